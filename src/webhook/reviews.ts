/**
 * Pure handlers for the API server's webhook calls: `ConversionReview` (v1 <-> v2alpha1) and
 * `AdmissionReview` (validation with the same zod schemas as everything else).
 *
 * @module
 */
import {
  type ApiVersion,
  canonicalJson,
  convertPolicy,
  formatProblems,
  GROUP,
  type JsonObject,
  validateSpec,
  VERSIONS,
} from "../api/mod.ts";

/** A `apiextensions.k8s.io/v1` ConversionReview as the API server sends it. */
export interface ConversionReview {
  /** The review's own version, `apiextensions.k8s.io/v1`; the answer echoes it. */
  apiVersion: string;
  /** Always `ConversionReview`. */
  kind: "ConversionReview";
  /**
   * What to convert: the objects and the `group/version` wanted, with the `uid` the response
   * must echo. Set in what the API server sends.
   */
  request?: { uid: string; desiredAPIVersion: string; objects: JsonObject[] };
  /** The converted objects or the failure; set in the answer. */
  response?: JsonObject;
}

/** A `admission.k8s.io/v1` AdmissionReview as the API server sends it. */
export interface AdmissionReview {
  /** The review's own version, `admission.k8s.io/v1`; the answer echoes it. */
  apiVersion: string;
  /** Always `AdmissionReview`. */
  kind: "AdmissionReview";
  /**
   * The write to judge: the object as it would be stored, the previous one on updates, and the
   * `uid` the response must echo. Set in what the API server sends.
   */
  request?: {
    uid: string;
    operation: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
    object?: JsonObject;
    oldObject?: JsonObject;
    subResource?: string;
  };
  /** Whether the write is allowed and, if not, why; set in the answer. */
  response?: JsonObject;
}

function servedVersion(apiVersion: unknown): ApiVersion | undefined {
  const [group, version] = String(apiVersion).split("/");
  return group === GROUP && (VERSIONS as readonly string[]).includes(version)
    ? version as ApiVersion
    : undefined;
}

/**
 * Answers a ConversionReview: converts every object to the desired version, or fails the whole
 * review with a message (the API server then fails the request rather than store half of it).
 *
 * @param review The review received.
 * @returns The review to send back.
 */
export function handleConversion(review: ConversionReview): ConversionReview {
  const request = review.request;
  if (!request) throw new TypeError("Cannot convert: the ConversionReview has no request");
  const target = servedVersion(request.desiredAPIVersion);
  const respond = (response: JsonObject): ConversionReview => ({
    apiVersion: review.apiVersion,
    kind: "ConversionReview",
    response: { uid: request.uid, ...response },
  });
  if (!target) {
    return respond({
      convertedObjects: [],
      result: {
        status: "Failure",
        message: `cannot convert to ${request.desiredAPIVersion}: served versions are ${VERSIONS}`,
      },
    });
  }
  try {
    const convertedObjects = request.objects.map((object) => convertPolicy(object, target));
    return respond({ convertedObjects, result: { status: "Success" } });
  } catch (error) {
    return respond({
      convertedObjects: [],
      result: { status: "Failure", message: (error as Error).message },
    });
  }
}

/**
 * Answers an AdmissionReview for a KivePolicy: allowed when the spec passes the zod schema of
 * its version. Updates that leave the spec as it was (status, finalizers, labels) and objects
 * being deleted are always allowed, so a rule added later can never trap an old policy.
 *
 * @param review The review received.
 * @returns The review to send back.
 */
export function handleAdmission(review: AdmissionReview): AdmissionReview {
  const request = review.request;
  if (!request) throw new TypeError("Cannot admit: the AdmissionReview has no request");
  const respond = (response: JsonObject): AdmissionReview => ({
    apiVersion: review.apiVersion,
    kind: "AdmissionReview",
    response: { uid: request.uid, ...response },
  });
  const object = request.object;
  if (request.operation === "DELETE" || request.subResource || !object) {
    return respond({ allowed: true });
  }
  const metadata = (object.metadata ?? {}) as JsonObject;
  if (metadata.deletionTimestamp) return respond({ allowed: true });
  if (
    request.operation === "UPDATE" && request.oldObject &&
    canonicalJson(request.oldObject.spec) === canonicalJson(object.spec)
  ) {
    return respond({ allowed: true });
  }
  const version = servedVersion(object.apiVersion);
  if (!version) {
    return respond({
      allowed: false,
      status: {
        code: 400,
        reason: "BadRequest",
        message: `unexpected apiVersion ${object.apiVersion}`,
      },
    });
  }
  const result = validateSpec(version, object.spec);
  if (result.ok) return respond({ allowed: true });
  return respond({
    allowed: false,
    status: { code: 422, reason: "Invalid", message: formatProblems(result.problems) },
  });
}
