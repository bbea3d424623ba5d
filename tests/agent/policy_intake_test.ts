import assert from "node:assert/strict";
import type { KivePolicyV2 } from "../../src/api/mod.ts";
import { createLogger } from "../../src/agent/log.ts";
import { takeInPolicies } from "../../src/agent/policy_intake.ts";

function policy(name: string, spec: unknown, deleting = false): KivePolicyV2 {
  return {
    apiVersion: "kivebpf.san7o.github.io/v2alpha1",
    kind: "KivePolicy",
    metadata: {
      name,
      namespace: "default",
      uid: `uid-${name}`,
      ...(deleting ? { deletionTimestamp: "2026-12-04T10:00:00Z" } : {}),
    },
    spec: spec as KivePolicyV2["spec"],
  };
}

Deno.test("takeInPolicies sorts live, deleting and invalid policies and warns once per invalid policy", () => {
  const lines: string[] = [];
  const log = createLogger("debug", (line) => lines.push(line));
  const good = { traps: [{ path: "/secret.txt", matchAny: [{ pod: "nginx-pod" }] }] };
  const objects = [
    policy("good", good),
    policy("going", good, true),
    // Stored before today's rules: a relative path.
    policy("bad", { traps: [{ path: "secret.txt", matchAny: [{ pod: "x" }] }] }),
  ];
  const first = takeInPolicies(objects, new Set(), log);
  assert.deepEqual(first.live.map((p) => p.metadata.name), ["good"]);
  assert.equal(first.live[0].spec.alertVersion ?? "v1", "v1");
  assert.deepEqual(first.deleting.map((p) => p.metadata.name), ["going"]);
  assert.deepEqual([...first.invalid.keys()], ["uid-bad"]);
  assert.match(first.invalid.get("uid-bad")!.problems, /traps\[0\]\.path/);
  assert.equal(lines.filter((l) => l.includes("ignoring invalid KivePolicy")).length, 1);

  takeInPolicies(objects, new Set(first.invalid.keys()), log);
  assert.equal(
    lines.filter((l) => l.includes("ignoring invalid KivePolicy")).length,
    1,
    "not logged again on every pass",
  );
});
