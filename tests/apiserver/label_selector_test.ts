/**
 * matchExpressions against the real API server: the same expressions select the same pods as
 * the API server's own label selectors, and a policy created without strict field validation
 * keeps them in both versions (a pruned expression would widen the selection silently).
 */
import assert from "node:assert/strict";
import { compileLabelExpressions, GROUP, type LabelExpression, PLURAL } from "../../src/api/mod.ts";
import { randomSource } from "../api/random_policy.ts";
import { ensureNamespace } from "../integration/_cluster.ts";
import { installApi } from "./_install.ts";

const api = await installApi();
globalThis.addEventListener("unload", () => {
  api.close().catch(() => {});
});
const { kube } = api;
const NS = "kivebpf-selectors";
const POLICY_NS = "kivebpf-system";

const LABEL_SETS: Record<string, string>[] = [
  {},
  { tier: "web" },
  { tier: "db" },
  { tier: "web", env: "prod" },
  { tier: "db", env: "dev" },
  { env: "prod" },
  { tier: "", env: "staging" },
  { "example.com/team": "blue", tier: "web" },
];
const KEYS = ["tier", "env", "example.com/team", "absent"];
const VALUES = ["web", "db", "prod", "dev", "staging", "blue", ""];

/** The expression in the API server's selector syntax (k8s.io/apimachinery/pkg/labels). */
function selectorText(expression: LabelExpression): string {
  const values = (expression.values ?? []).join(",");
  switch (expression.operator) {
    case "In":
      return `${expression.key} in (${values})`;
    case "NotIn":
      return `${expression.key} notin (${values})`;
    case "Exists":
      return expression.key;
    case "DoesNotExist":
      return `!${expression.key}`;
  }
}

Deno.test("matchExpressions select exactly the pods the API server's label selectors select", async () => {
  await ensureNamespace(kube, NS);
  for (const [i, labels] of LABEL_SETS.entries()) {
    await kube.request("DELETE", `/api/v1/namespaces/${NS}/pods/pod-${i}`);
    await kube.ok("POST", `/api/v1/namespaces/${NS}/pods`, {
      metadata: { name: `pod-${i}`, labels },
      spec: { containers: [{ name: "c", image: "kivebpf/none:never-pulled" }] },
    });
  }
  const random = randomSource(Date.now() % 1_000_000);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  for (let round = 0; round < 60; round++) {
    const expressions: LabelExpression[] = Array.from(
      { length: 1 + Math.floor(random() * 3) },
      () => {
        const operator = pick(["In", "NotIn", "Exists", "DoesNotExist"] as const);
        const values = operator === "In" || operator === "NotIn"
          ? [...new Set(Array.from({ length: 1 + Math.floor(random() * 2) }, () => pick(VALUES)))]
          : undefined;
        return { key: pick(KEYS), operator, ...(values ? { values } : {}) };
      },
    );
    const selector = expressions.map(selectorText).join(",");
    const listed = await kube.ok(
      "GET",
      `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(selector)}`,
    );
    const theirs = listed.items.map((p: { metadata: { name: string } }) => p.metadata.name).sort();
    const matches = compileLabelExpressions(expressions);
    const ours = LABEL_SETS.flatMap((labels, i) => matches(labels) ? [`pod-${i}`] : []).sort();
    assert.deepEqual(ours, theirs, `selector ${selector}`);
  }
  await kube.request("DELETE", `/api/v1/namespaces/${NS}/pods`);
});

Deno.test("a policy created without strict field validation keeps its matchExpressions in v1 and v2alpha1", async () => {
  const group = {
    namespace: "default",
    matchExpressions: [
      { key: "tier", operator: "In", values: ["web"] },
      { key: "env", operator: "NotIn", values: ["dev"] },
      { key: "canary", operator: "DoesNotExist" },
    ],
  };
  for (const version of ["v1", "v2alpha1"]) {
    const name = `expressions-${version}`;
    const url = `/apis/${GROUP}/${version}/namespaces/${POLICY_NS}/${PLURAL}`;
    await kube.request("DELETE", `${url}/${name}`);
    // A plain POST: no fieldValidation=Strict, as clients other than kubectl send them.
    await kube.ok("POST", url, {
      apiVersion: `${GROUP}/${version}`,
      kind: "KivePolicy",
      metadata: { name, namespace: POLICY_NS },
      spec: { traps: [{ path: "/t.txt", create: true, matchAny: [group] }] },
    });
    for (const readAs of ["v1", "v2alpha1"]) {
      const got = await kube.ok(
        "GET",
        `/apis/${GROUP}/${readAs}/namespaces/${POLICY_NS}/${PLURAL}/${name}`,
      );
      assert.deepEqual(got.spec.traps[0].matchAny[0], group, `${version} read as ${readAs}`);
    }
    await kube.request("DELETE", `${url}/${name}`);
  }
});
