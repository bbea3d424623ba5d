import assert from "node:assert/strict";
import {
  compileLabelExpressions,
  type LabelExpression,
  labelKeyProblem,
  labelValueProblem,
} from "../../src/api/mod.ts";

const labels = { app: "web", tier: "prod", "example.com/team": "blue", empty: "" };

Deno.test("compileLabelExpressions() matches In, NotIn, Exists and DoesNotExist as Kubernetes does", () => {
  const cases: [LabelExpression, boolean][] = [
    [{ key: "tier", operator: "In", values: ["prod", "staging"] }, true],
    [{ key: "tier", operator: "In", values: ["dev"] }, false],
    [{ key: "missing", operator: "In", values: ["x"] }, false],
    [{ key: "tier", operator: "NotIn", values: ["dev"] }, true],
    [{ key: "tier", operator: "NotIn", values: ["prod"] }, false],
    [{ key: "missing", operator: "NotIn", values: ["x"] }, true],
    [{ key: "example.com/team", operator: "Exists" }, true],
    [{ key: "empty", operator: "Exists" }, true],
    [{ key: "empty", operator: "In", values: [""] }, true],
    [{ key: "missing", operator: "Exists" }, false],
    [{ key: "missing", operator: "DoesNotExist" }, true],
    [{ key: "app", operator: "DoesNotExist" }, false],
    [{ key: "toString", operator: "Exists" }, false],
  ];
  for (const [expression, expected] of cases) {
    assert.equal(
      compileLabelExpressions([expression])(labels),
      expected,
      JSON.stringify(expression),
    );
  }
  assert.equal(compileLabelExpressions([])(labels), true, "no expression selects everything");
  assert.equal(
    compileLabelExpressions([cases[0][0], cases[11][0]])(labels),
    false,
    "expressions are ANDed",
  );
});

Deno.test("labelKeyProblem() and labelValueProblem() follow Kubernetes' label syntax", () => {
  for (const key of ["app", "app.kubernetes.io/name", "a", "A_b-c.d", "x/" + "n".repeat(63)]) {
    assert.equal(labelKeyProblem(key), undefined, key);
  }
  for (
    const key of ["", "-app", "app-", "a b", "UPPER.example/x", "/name", "a/b/c", "n".repeat(64)]
  ) {
    assert.match(labelKeyProblem(key) ?? "", /label key/, key);
  }
  for (const value of ["", "prod", "v1.2_3-x", "v".repeat(63)]) {
    assert.equal(labelValueProblem(value), undefined, value);
  }
  for (const value of ["-x", "x-", "a b", "v".repeat(64), "é"]) {
    assert.match(labelValueProblem(value) ?? "", /label value/, value);
  }
});
