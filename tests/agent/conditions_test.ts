import assert from "node:assert/strict";
import type { KivePolicyV2, NodeReportBody } from "../../src/api/mod.ts";
import { conditionsCurrent, policyConditions as conditionsOf } from "../../src/agent/conditions.ts";

/** The reports each test policy's nodes wrote. */
const reportsOf = new WeakMap<KivePolicyV2, NodeReportBody[]>();

function policy(
  actions: string[],
  nodes: { node: string; backend?: string; armed: number; reasons: string[] }[],
): KivePolicyV2 {
  const object = {
    apiVersion: "kivebpf.san7o.github.io/v2alpha1",
    kind: "KivePolicy",
    metadata: { name: "p", namespace: "ns", uid: "u", generation: 3 },
    spec: {
      alertVersion: "v2alpha1",
      traps: actions.map((action) => ({ path: "/x", action, matchAny: [{ pod: "*" }] })),
    },
  } as unknown as KivePolicyV2;
  reportsOf.set(
    object,
    nodes.map((n) => ({
      policy: { name: "p", uid: "u" },
      node: n.node,
      backend: n.backend,
      armed: n.armed,
      notArmed: n.reasons.filter((r) => r !== "BlockNotEnforced").length,
      traps: [{
        index: 0,
        path: "/x",
        armed: n.armed,
        problems: n.reasons.map((reason) => ({ pod: "pod", namespace: "default", reason })),
      }],
    })),
  );
  return object;
}

/** The conditions of a test policy from its nodes' reports. */
function policyConditions(p: KivePolicyV2, invalid?: string, now?: number) {
  return conditionsOf(p, reportsOf.get(p) ?? [], invalid, now);
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
    status: {
      armed: first.armed,
      notArmed: first.notArmed,
      nodeCount: first.nodeCount,
      conditions: first.conditions,
    },
  } as KivePolicyV2;
  reportsOf.set(stored, reportsOf.get(p)!);
  assert.ok(conditionsCurrent(stored, policyConditions(stored)));
  reportsOf.get(stored)![0].armed = 2;
  const later = policyConditions(
    stored,
    undefined,
    Date.parse("2026-06-01T00:00:00Z"),
  );
  assert.ok(!conditionsCurrent(stored, later));
  assert.equal(later.conditions[0].lastTransitionTime, "2026-01-01T00:00:00Z", "still True");
});

Deno.test("policyConditions(): totals count every node's containers, and messages name a few nodes only", () => {
  const nodes = Array.from({ length: 40 }, (_, i) => ({
    node: `node-${i}`,
    backend: "tracepoint",
    armed: 2,
    reasons: ["BlockNotEnforced", "FileMissing"],
  }));
  const result = policyConditions(policy(["block"], nodes));
  assert.deepEqual([result.armed, result.notArmed, result.nodeCount], [80, 40, 40]);
  const block = result.conditions.find((c) => c.type === "BlockEnforced")!;
  assert.match(block.message, /node-4 \(tracepoint\) and 35 more: /);
  assert.ok(block.message.length < 300, "bounded whatever the number of nodes");
});
