import assert from "node:assert/strict";
import { parse } from "yaml";
import { formatProblems, validateSpec } from "../../src/api/mod.ts";
import { BAD_INPUTS, goodTrap } from "./bad_inputs.ts";

for (const bad of BAD_INPUTS) {
  Deno.test(`validateSpec() rejects ${bad.name} naming ${bad.field}`, () => {
    const result = validateSpec(bad.apiVersion, bad.spec);
    assert.equal(result.ok, false);
    if (result.ok) return;
    const text = formatProblems(result.problems);
    assert.ok(
      text.includes(`${bad.field}: ${bad.message}`),
      `expected "${bad.field}: ${bad.message}" in "${text}"`,
    );
  });
}

Deno.test("validateSpec() applies defaults: create false, mode 444, alertVersion v1", () => {
  const result = validateSpec("v1", { traps: [{ path: "/a", matchAny: [{ pod: "p" }] }] });
  assert.ok(result.ok);
  assert.deepEqual(result.spec, {
    alertVersion: "v1",
    traps: [{ path: "/a", create: false, mode: 444, matchAny: [{ pod: "p" }] }],
  });
});

Deno.test("validateSpec() accepts an empty alertVersion as v1", () => {
  assert.ok(validateSpec("v1", { alertVersion: "", traps: [goodTrap()] }).ok);
});

Deno.test("validateSpec() defaults the v2alpha1 action to alert", () => {
  const result = validateSpec("v2alpha1", { traps: [goodTrap()] });
  assert.ok(result.ok);
  assert.equal(result.spec.traps[0].action, "alert");
});

Deno.test("validateSpec() accepts the same path with different selectors", () => {
  const spec = { traps: [goodTrap(), goodTrap({ matchAny: [{ pod: "other" }] })] };
  assert.ok(validateSpec("v1", spec).ok);
});

Deno.test("validateSpec() accepts every sample policy", async () => {
  const dir = new URL("../../manifests/samples/", import.meta.url);
  let count = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.endsWith(".yaml")) continue;
    const object = parse(await Deno.readTextFile(new URL(entry.name, dir)));
    const version = object.apiVersion.split("/")[1];
    const result = validateSpec(version, object.spec);
    assert.ok(result.ok, `${entry.name}: ${!result.ok && formatProblems(result.problems)}`);
    count++;
  }
  assert.ok(count >= 5, `only ${count} samples`);
});
