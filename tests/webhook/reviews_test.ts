import assert from "node:assert/strict";
import { GROUP, V2_FIELDS_ANNOTATION } from "../../src/api/mod.ts";
import { handleAdmission, handleConversion } from "../../src/webhook/mod.ts";
import { goodTrap } from "../api/bad_inputs.ts";

const v2Object = {
  apiVersion: `${GROUP}/v2alpha1`,
  kind: "KivePolicy",
  metadata: { name: "p", namespace: "ns" },
  spec: { traps: [goodTrap({ action: "block" })] },
};

Deno.test("handleConversion() converts every object and echoes the uid", () => {
  const answer = handleConversion({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "ConversionReview",
    request: { uid: "u1", desiredAPIVersion: `${GROUP}/v1`, objects: [v2Object, v2Object] },
  });
  const response = answer.response as Record<string, unknown>;
  assert.equal(response.uid, "u1");
  assert.deepEqual(response.result, { status: "Success" });
  const converted = response.convertedObjects as Record<string, Record<string, unknown>>[];
  assert.equal(converted.length, 2);
  assert.equal(converted[0].apiVersion, `${GROUP}/v1`);
  assert.ok((converted[0].metadata.annotations as Record<string, string>)[V2_FIELDS_ANNOTATION]);
});

Deno.test("handleConversion() fails the review for an unknown target version", () => {
  const answer = handleConversion({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "ConversionReview",
    request: { uid: "u2", desiredAPIVersion: `${GROUP}/v9`, objects: [v2Object] },
  });
  const result = (answer.response as Record<string, Record<string, string>>).result;
  assert.equal(result.status, "Failure");
  assert.match(result.message, /served versions are v1,v2alpha1/);
});

function admit(operation: "CREATE" | "UPDATE" | "DELETE", object: unknown, oldObject?: unknown) {
  const answer = handleAdmission({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "a1",
      operation,
      object: object as Record<string, unknown>,
      oldObject: oldObject as Record<string, unknown>,
    },
  });
  return answer.response as {
    uid: string;
    allowed: boolean;
    status?: { code: number; message: string };
  };
}

Deno.test("handleAdmission() allows a valid policy and denies an invalid one with the field", () => {
  assert.equal(admit("CREATE", v2Object).allowed, true);
  const bad = { ...v2Object, spec: { traps: [goodTrap({ path: "/a/../b" })] } };
  const response = admit("CREATE", bad);
  assert.equal(response.allowed, false);
  assert.equal(response.status?.code, 422);
  assert.match(response.status?.message ?? "", /^spec\.traps\[0\]\.path: must be normalized/);
});

Deno.test("handleAdmission() lets an unchanged spec through so finalizers can always be removed", () => {
  const bad = { ...v2Object, spec: { traps: [goodTrap({ path: "relative" })] } };
  assert.equal(admit("UPDATE", bad, bad).allowed, true);
  assert.equal(admit("UPDATE", bad, v2Object).allowed, false);
  const deleting = {
    ...bad,
    metadata: { ...bad.metadata, deletionTimestamp: "2026-01-01T00:00:00Z" },
  };
  assert.equal(admit("UPDATE", deleting, v2Object).allowed, true);
  assert.equal(admit("DELETE", undefined, bad).allowed, true);
});
