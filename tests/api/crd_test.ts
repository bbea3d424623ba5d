import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { z } from "zod";
import { buildCrd } from "../../src/api/mod.ts";
import { toCrdSchema } from "../../src/api/crd.ts";
import { renderManifests } from "../../scripts/gen.ts";

type Schema = Record<string, unknown>;

const FORBIDDEN_KEYS = [
  "$schema",
  "$ref",
  "definitions",
  "const",
  "anyOf",
  "oneOf",
  "allOf",
  "not",
  "id",
];

/**
 * Checks the structural-schema rules of apiextensions.k8s.io/v1 that zod's output could break:
 * every node has a type, properties and additionalProperties are exclusive, no
 * `additionalProperties: false`, no JSON Schema features a CRD rejects.
 */
function structuralProblems(node: Schema, path: string): string[] {
  const problems: string[] = [];
  if (
    typeof node.type !== "string" && !node["x-kubernetes-int-or-string"] &&
    !node["x-kubernetes-preserve-unknown-fields"]
  ) {
    problems.push(`${path}: no type`);
  }
  for (const key of FORBIDDEN_KEYS) if (key in node) problems.push(`${path}: has ${key}`);
  if ("properties" in node && "additionalProperties" in node) {
    problems.push(`${path}: properties and additionalProperties`);
  }
  if (node.additionalProperties === false) problems.push(`${path}: additionalProperties false`);
  if (node.type === "array" && typeof node.items !== "object") {
    problems.push(`${path}: array without items`);
  }
  for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Schema>)) {
    problems.push(...structuralProblems(child, `${path}.${name}`));
  }
  if (typeof node.items === "object") {
    problems.push(...structuralProblems(node.items as Schema, `${path}[]`));
  }
  if (typeof node.additionalProperties === "object") {
    problems.push(...structuralProblems(node.additionalProperties as Schema, `${path}{}`));
  }
  const required = (node.required ?? []) as string[];
  for (const name of required) {
    if (!(name in ((node.properties ?? {}) as Schema))) {
      problems.push(`${path}: requires unknown ${name}`);
    }
  }
  return problems;
}

Deno.test("buildCrd() produces structural schemas for every version", () => {
  const crd = buildCrd() as {
    spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
  };
  assert.deepEqual(crd.spec.versions.map((v) => v.name), ["v1", "v2alpha1"]);
  for (const version of crd.spec.versions) {
    assert.deepEqual(structuralProblems(version.schema.openAPIV3Schema, version.name), []);
  }
});

Deno.test("buildCrd() stores v2alpha1, serves both, has status, short name kp and webhook conversion", () => {
  const crd = buildCrd() as Record<string, Record<string, unknown>>;
  const spec = crd.spec as {
    versions: { name: string; storage: boolean; served: boolean; subresources: unknown }[];
    names: { shortNames: string[] };
    scope: string;
    conversion: { strategy: string; webhook: { clientConfig: { service: { path: string } } } };
  };
  assert.deepEqual(spec.versions.map((v) => [v.name, v.served, v.storage]), [["v1", true, false], [
    "v2alpha1",
    true,
    true,
  ]]);
  assert.ok(spec.versions.every((v) => JSON.stringify(v.subresources) === '{"status":{}}'));
  assert.deepEqual(spec.names.shortNames, ["kp"]);
  assert.equal(spec.scope, "Namespaced");
  assert.equal(spec.conversion.strategy, "Webhook");
  assert.equal(spec.conversion.webhook.clientConfig.service.path, "/convert");
});

Deno.test("buildCrd() keeps v2alpha1-only fields out of v1", () => {
  const crd = buildCrd() as {
    spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
  };
  const trapProperties = (index: number) => {
    const props = (node: Schema, ...names: string[]): Schema =>
      names.reduce((at, name) => (at.properties as Record<string, Schema>)[name], node);
    const traps = props(crd.spec.versions[index].schema.openAPIV3Schema, "spec", "traps");
    return Object.keys((traps.items as Schema).properties as Schema).sort();
  };
  assert.deepEqual(trapProperties(0), [
    "callback",
    "create",
    "matchAny",
    "metadata",
    "mode",
    "path",
  ]);
  assert.deepEqual(
    trapProperties(1),
    [
      "action",
      "callback",
      "callbackCABundle",
      "callbackFormat",
      "callbackHeadersFrom",
      "content",
      "contentFrom",
      "create",
      "matchAny",
      "metadata",
      "mode",
      "owner",
      "path",
    ],
  );
});

Deno.test("generated manifests are up to date (run `deno task gen` if this fails)", async () => {
  const root = new URL("../../", import.meta.url);
  for (const [path, text] of renderManifests()) {
    const current = await Deno.readTextFile(new URL(path, root));
    assert.equal(current, text, `${path} is stale`);
    // Helm templates are YAML only once helm has rendered them (tests/helm checks that).
    if (path.includes("/templates/")) continue;
    assert.ok(parseAllDocuments(current).every((doc) => doc.errors.length === 0), path);
  }
});

Deno.test("toCrdSchema() keeps fields named like JSON Schema keywords (id, $schema)", () => {
  const schema = toCrdSchema(z.object({ id: z.string(), $schema: z.string().optional() }));
  assert.deepEqual(Object.keys(schema.properties as object).sort(), ["$schema", "id"]);
  assert.deepEqual(schema.required, ["id"]);
  assert.equal("$schema" in schema, false, "the keyword itself is still dropped");
});

Deno.test("both install manifests let the agent get Secrets in its namespace only; the cert-manager one only gets them", () => {
  const secretRules = (path: string) => {
    const docs = parseAllDocuments(renderManifests().get(path)!).map((d) => d.toJSON());
    const roles = docs.filter((d) => d?.kind === "Role" || d?.kind === "ClusterRole");
    return roles.flatMap((role) =>
      (role.rules as { resources: string[]; verbs: string[] }[])
        .filter((rule) => rule.resources.includes("secrets"))
        .map((rule) => ({ kind: role.kind, namespace: role.metadata.namespace, verbs: rule.verbs }))
    );
  };
  const plain = secretRules("manifests/install.yaml");
  assert.deepEqual(plain.map((r) => [r.kind, r.namespace]), [["Role", "kivebpf-system"]]);
  assert.ok(plain[0].verbs.includes("get"));
  assert.deepEqual(secretRules("manifests/install-cert-manager.yaml"), [
    { kind: "Role", namespace: "kivebpf-system", verbs: ["get"] },
  ]);
});
