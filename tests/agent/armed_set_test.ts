import assert from "node:assert/strict";
import type { V1ConfigMap } from "@kubernetes/client-node";
import {
  ARMED_SET_LABEL,
  armedSetName,
  kernelOutcome,
  type KernelView,
  readArmedSet,
} from "../../src/agent/armed_set.ts";
import { createLogger } from "../../src/agent/log.ts";
import type { PlantOutcome } from "../../src/agent/status.ts";
import { registration } from "./_fixtures.ts";

const planted = { target: { key: "k" }, ok: true } as unknown as PlantOutcome;
const view = (extra: Partial<KernelView>): KernelView => ({
  leading: false,
  leaderKnown: true,
  armFailure: () => undefined,
  ...extra,
});

Deno.test("kernelOutcome(): planted is armed only where the kernel's leader armed the inode", () => {
  const r = registration("1001");
  const reason = (o: PlantOutcome) => (o.ok ? "armed" : o.reason);
  assert.equal(reason(kernelOutcome(planted, r, view({ leading: true }))), "armed");
  assert.equal(
    reason(kernelOutcome(planted, r, view({ leading: true, armFailure: () => "E2BIG" }))),
    "ArmFailed",
  );
  assert.equal(reason(kernelOutcome(planted, r, view({ leaderKnown: false }))), "NoKernelLeader");
  assert.equal(
    reason(kernelOutcome(planted, r, view({ armedSet: { leader: "node-b", inodes: ["42:7"] } }))),
    "NotArmedByLeader",
  );
  assert.equal(reason(kernelOutcome(planted, r, view({}))), "NotArmedByLeader", "no set yet");
  assert.equal(
    reason(
      kernelOutcome(planted, r, view({ armedSet: { leader: "node-b", inodes: ["42:1001"] } })),
    ),
    "armed",
  );
  const refused = { target: {}, ok: false, reason: "PathIsSymlink", message: "m" } as never;
  assert.equal(kernelOutcome(refused, undefined, view({ leaderKnown: false })), refused);
});

Deno.test("readArmedSet() finds the labelled ConfigMap and refuses a malformed one", () => {
  const lines: string[] = [];
  const log = createLogger("info", (line) => lines.push(line));
  const cm = (data: string): V1ConfigMap => ({
    metadata: { name: armedSetName("ABC_1"), labels: { [ARMED_SET_LABEL]: "true" } },
    data: { "armed.json": data },
  });
  const registrations: V1ConfigMap = { metadata: { name: "kivebpf-node-a" }, data: {} };
  assert.deepEqual(
    readArmedSet([registrations, cm('{"leader":"a","inodes":["42:7"]}')], log),
    { leader: "a", inodes: ["42:7"] },
  );
  assert.equal(readArmedSet([registrations], log), undefined);
  assert.equal(readArmedSet([cm('{"leader":"a","inodes":["12x"]}')], log), undefined);
  assert.equal(readArmedSet([cm("{not json")], log), undefined);
  assert.equal(lines.filter((l) => l.includes("unreadable armed set")).length, 2);
  assert.equal(armedSetName("ABC_1"), "kivebpf-kernel-abc-1-armed");
});
