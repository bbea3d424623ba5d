import assert from "node:assert/strict";
import { convertPolicy, GROUP, V2_FIELDS_ANNOTATION, validateSpec } from "../../src/api/mod.ts";
import { randomSource, randomSpec } from "./random_policy.ts";

type TestPolicy = {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown>;
  spec: { traps: Record<string, unknown>[]; [key: string]: unknown };
  status: Record<string, unknown>;
};

// deno-lint-ignore no-explicit-any
function policy(version: "v1" | "v2alpha1", spec: Record<string, any>): TestPolicy {
  return {
    apiVersion: `${GROUP}/${version}`,
    kind: "KivePolicy",
    metadata: { name: "p", namespace: "ns", labels: { a: "b" } },
    spec: spec as TestPolicy["spec"],
    status: { observedGeneration: 3 },
  };
}

Deno.test("convertPolicy() stashes v2alpha1-only fields in an annotation on v1", () => {
  const v2 = policy("v2alpha1", {
    alertVersion: "v2alpha1",
    traps: [
      {
        path: "/a",
        matchAny: [{ pod: "p" }],
        action: "block",
        content: "x",
        owner: { uid: 1, gid: 2 },
      },
      { path: "/b", matchAny: [{ pod: "p" }], action: "alert" },
    ],
  });
  const v1 = convertPolicy(v2, "v1") as unknown as TestPolicy;
  assert.equal(v1.apiVersion, `${GROUP}/v1`);
  assert.deepEqual(v1.spec.traps, [{ path: "/a", matchAny: [{ pod: "p" }] }, {
    path: "/b",
    matchAny: [{ pod: "p" }],
  }]);
  const annotations = (v1.metadata as { annotations: Record<string, string> }).annotations;
  assert.deepEqual(JSON.parse(annotations[V2_FIELDS_ANNOTATION]), [
    { index: 0, path: "/a", fields: { action: "block", content: "x", owner: { uid: 1, gid: 2 } } },
  ]);
  assert.ok(validateSpec("v1", v1.spec).ok);
  assert.deepEqual(convertPolicy(v1, "v2alpha1"), {
    ...v2,
    spec: { ...v2.spec, traps: [v2.spec.traps[0], { path: "/b", matchAny: [{ pod: "p" }] }] },
  });
});

Deno.test("convertPolicy() leaves no annotation when v1 can hold everything", () => {
  const v1 = convertPolicy(
    policy("v2alpha1", { traps: [{ path: "/a", matchAny: [{ pod: "p" }] }] }),
    "v1",
  );
  assert.equal((v1.metadata as Record<string, unknown>).annotations, undefined);
});

Deno.test("convertPolicy() does not restore fields onto a trap a v1 client moved", () => {
  const v1 = convertPolicy(
    policy("v2alpha1", { traps: [{ path: "/a", matchAny: [{ pod: "p" }], action: "block" }] }),
    "v1",
  ) as unknown as TestPolicy;
  v1.spec.traps = [{ path: "/other", matchAny: [{ pod: "p" }] }];
  const v2 = convertPolicy(v1, "v2alpha1") as unknown as TestPolicy;
  assert.deepEqual(v2.spec.traps, [{ path: "/other", matchAny: [{ pod: "p" }] }]);
  assert.equal((v2.metadata as Record<string, unknown>).annotations, undefined);
});

Deno.test("convertPolicy() ignores an unreadable annotation", () => {
  const v1 = policy("v1", { traps: [{ path: "/a", matchAny: [{ pod: "p" }] }] });
  (v1.metadata as Record<string, unknown>).annotations = { [V2_FIELDS_ANNOTATION]: "{not json" };
  const v2 = convertPolicy(v1, "v2alpha1") as unknown as TestPolicy;
  assert.deepEqual(v2.spec, v1.spec);
});

Deno.test("convertPolicy() rejects foreign apiVersions", () => {
  assert.throws(() => convertPolicy({ apiVersion: "other.io/v1" }, "v1"), TypeError);
});

Deno.test("convertPolicy() round trips random objects losslessly in both directions", () => {
  const seed = Date.now() % 1_000_000;
  const random = randomSource(seed);
  for (let i = 0; i < 500; i++) {
    for (const version of ["v1", "v2alpha1"] as const) {
      const original = policy(version, randomSpec(random, version));
      const other = version === "v1" ? "v2alpha1" : "v1";
      const there = convertPolicy({ ...original }, other);
      assert.ok(validateSpec(other, there.spec).ok, `seed ${seed}: converted spec invalid`);
      const back = convertPolicy(there, version) as unknown as TestPolicy;
      // The default action is not stashed: the API server defaults it again on the way back.
      const expected = structuredClone(original);
      if (version === "v2alpha1") {
        for (const trap of expected.spec.traps) {
          if (trap.action === "alert") delete trap.action;
        }
        for (const trap of back.spec.traps) {
          if (trap.action === "alert") delete trap.action;
        }
      }
      assert.deepEqual(back, expected, `seed ${seed}, object ${i}, from ${version}`);
    }
  }
});
