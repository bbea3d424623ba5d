import assert from "node:assert/strict";
import type { V1ConfigMap } from "@kubernetes/client-node";
import type { TrapRegistration } from "../../src/agent/alert.ts";
import { createLogger } from "../../src/agent/log.ts";
import { handOverAction, NODE_LABEL, peerRegistrations } from "../../src/agent/registrations.ts";
import { registration as baseRegistration } from "./_fixtures.ts";

function registration(ino: string): TrapRegistration {
  return baseRegistration(ino, {
    policy: { namespace: "default", name: "p", uid: "u" },
    container: { name: "app", id: "containerd://abc" },
    node: "node-b",
  });
}

function configMap(node: string, data: string): V1ConfigMap {
  return {
    metadata: { name: `kivebpf-node-${node}`, labels: { [NODE_LABEL]: node } },
    data: { "registrations.json": data },
  };
}

Deno.test("peerRegistrations() skips malformed entries one by one and names the field", () => {
  const lines: string[] = [];
  const log = createLogger("info", (line) => lines.push(line));
  const good = registration("1001");
  const entries = [
    good,
    { ...registration("1002"), ino: "12x" }, // once reached BigInt() and stopped the sync
    { ...registration("1003"), dev: -1 },
    { ...registration("1004"), action: "explode" },
    "not an object",
    null,
    { ...registration("1005"), ino: "9".repeat(21) },
  ];
  const peers = peerRegistrations(
    [
      configMap("node-b", JSON.stringify(entries)),
      configMap("node-c", "{not json"),
      configMap("node-d", '{"an":"object"}'),
      configMap("node-a", JSON.stringify([registration("2000")])), // our own: skipped
    ],
    "node-a",
    log,
  );
  assert.deepEqual(peers, [good]);
  const skipped = lines.filter((line) => line.includes("invalid peer registration skipped"));
  assert.equal(skipped.length, 6);
  assert.ok(skipped[0].includes('"field":"ino"') && skipped[0].includes('"entry":1'), skipped[0]);
  assert.equal(lines.filter((line) => line.includes("unreadable registrations")).length, 2);
});

Deno.test("handOverAction(): followers publish, a leader publishes only on a shared kernel, nobody decides before the Lease is read", () => {
  const rows: [boolean, boolean, boolean, string][] = [
    // leaderKnown, leading, shared -> action
    [false, false, false, "wait"],
    [false, false, true, "wait"],
    [true, false, false, "publish"], // a follower: the leader needs its traps
    [true, false, true, "publish"],
    [true, true, true, "publish"], // a successor must be able to take over its traps
    [true, true, false, "withdraw"], // alone on its kernel: no write at all
    [false, true, false, "withdraw"],
  ];
  for (const [leaderKnown, leading, shared, action] of rows) {
    assert.equal(
      handOverAction({ leaderKnown, leading, shared }),
      action,
      JSON.stringify({ leaderKnown, leading, shared }),
    );
  }
});
