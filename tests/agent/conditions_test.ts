import assert from "node:assert/strict";
import type { KivePolicyV2 } from "../../src/api/mod.ts";
import { conditionsCurrent, policyConditions } from "../../src/agent/conditions.ts";

function policy(
  actions: string[],
  nodes: { node: string; backend?: string; armed: number; reasons: string[] }[],
): KivePolicyV2 {
  return {
    apiVersion: "kivebpf.san7o.github.io/v2alpha1",
    kind: "KivePolicy",
    metadata: { name: "p", namespace: "ns", uid: "u", generation: 3 },
    spec: {
      alertVersion: "v2alpha1",
      traps: actions.map((action) => ({ path: "/x", action, matchAny: [{ pod: "*" }] })),
    },
    status: {
      nodes: nodes.map((n) => ({
        node: n.node,
        backend: n.backend,
        armed: n.armed,
        traps: [{
          index: 0,
          path: "/x",
          armed: n.armed,
          problems: n.reasons.map((reason) => ({ pod: "pod", namespace: "default", reason })),
        }],
      })),
    },
  } as unknown as KivePolicyV2;
}

const byType = (result: ReturnType<typeof policyConditions>) =>
  Object.fromEntries(result.conditions.map((c) => [c.type, [c.status, c.reason]]));

Deno.test("policyConditions(): Ready follows the nodes; BlockEnforced appears only with block traps and names the nodes that only alert", () => {
  assert.deepEqual(byType(policyConditions(policy(["alert"], []))), {
    Ready: ["False", "NoMatch"],
  });
  assert.deepEqual(
    byType(policyConditions(policy(["alert"], [{ node: "a", armed: 1, reasons: [] }]))),
    { Ready: ["True", "Armed"] },
  );
  assert.deepEqual(
    byType(
      policyConditions(policy(["alert"], [{ node: "a", armed: 1, reasons: ["FileMissing"] }])),
    ),
    { Ready: ["False", "PartiallyArmed"] },
  );
  assert.deepEqual(
    byType(
      policyConditions(policy(["block"], [{ node: "a", backend: "lsm", armed: 1, reasons: [] }])),
    ),
    { Ready: ["True", "Armed"], BlockEnforced: ["True", "Enforced"] },
  );
  assert.deepEqual(
    byType(
      policyConditions(
        policy(["block"], [{ node: "a", backend: "lsm", armed: 0, reasons: ["FileMissing"] }]),
      ),
    ),
    { Ready: ["False", "NotArmed"], BlockEnforced: ["Unknown", "NotArmed"] },
    "no claim of enforcement before any block trap is armed",
  );
  const mixed = policyConditions(policy(["alert", "block"], [
    { node: "a", backend: "lsm", armed: 1, reasons: [] },
    { node: "b", backend: "tracepoint", armed: 1, reasons: ["BlockNotEnforced"] },
  ]));
  assert.deepEqual(byType(mixed), {
    Ready: ["True", "Armed"],
    BlockEnforced: ["False", "BlockNotEnforced"],
  });
  const block = mixed.conditions.find((c) => c.type === "BlockEnforced")!;
  assert.match(block.message, /^block traps only alert on b \(tracepoint\)/);
  assert.ok(!block.message.includes("a (lsm)"));
});

Deno.test("policyConditions(): a stored spec the agents refuse is Ready=False InvalidSpec with its problems, armed 0", () => {
  const result = policyConditions(
    policy(["block"], [{ node: "a", armed: 1, reasons: [] }]),
    "spec.traps[0].matchAny[0].pod: backreferences are not supported",
  );
  assert.equal(result.armed, 0);
  assert.deepEqual(byType(result), { Ready: ["False", "InvalidSpec"] });
  assert.match(result.conditions[0].message, /spec\.traps\[0\]\.matchAny\[0\]\.pod/);
});

Deno.test("conditionsCurrent() skips an apply that changes nothing; lastTransitionTime survives a message change", () => {
  const p = policy(["alert"], [{ node: "a", armed: 1, reasons: [] }]);
  const first = policyConditions(p, undefined, Date.parse("2026-01-01T00:00:00Z"));
  assert.ok(!conditionsCurrent(p, first));
  const stored = {
    ...p,
    status: { ...p.status, armed: first.armed, conditions: first.conditions },
  };
  assert.ok(conditionsCurrent(stored as KivePolicyV2, policyConditions(stored as KivePolicyV2)));
  stored.status.nodes![0].armed = 2;
  const later = policyConditions(
    stored as KivePolicyV2,
    undefined,
    Date.parse("2026-06-01T00:00:00Z"),
  );
  assert.ok(!conditionsCurrent(stored as KivePolicyV2, later));
  assert.equal(later.conditions[0].lastTransitionTime, "2026-01-01T00:00:00Z", "still True");
});
