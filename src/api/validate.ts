/**
 * Runtime validation of policies with messages that name the field and the fix, shared by the
 * admission webhook, the agent (which re-checks what it reads) and the tests.
 *
 * @module
 */
import type { z } from "zod";
import { type ApiVersion, SPEC_SCHEMAS, VERSIONS } from "./policy.ts";

/** One problem found in a policy. */
export interface PolicyProblem {
  /** The field, written as in kubectl messages: `spec.traps[0].path`. */
  field: string;
  /** What is wrong and how to fix it. */
  message: string;
}

/** The outcome of {@linkcode validateSpec}. */
export type SpecValidation<T> =
  | { ok: true; spec: T }
  | { ok: false; problems: PolicyProblem[] };

/** Renders a zod issue path the way Kubernetes names fields: `spec.traps[0].matchAny[1].ip`. */
export function fieldPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const key of path) {
    out += typeof key === "number" ? `[${key}]` : `.${String(key)}`;
  }
  return out;
}

/** Turns zod's generic wording into sentences about the policy. */
function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type":
      return `must be ${article(issue.expected)}`;
    case "too_small":
      if (issue.origin === "string" && issue.minimum === 1) return "must not be empty";
      if (issue.origin === "array") {
        return issue.message.startsWith("must")
          ? issue.message
          : `must list at least ${issue.minimum} item(s)`;
      }
      return `must be at least ${issue.minimum}`;
    case "too_big":
      if (issue.origin === "string") return `must be at most ${issue.maximum} characters`;
      if (issue.origin === "array") return `must list at most ${issue.maximum} items`;
      return `must be at most ${issue.maximum}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(", ")}`;
    default:
      return issue.message;
  }
}

function article(type: string): string {
  const names: Record<string, string> = {
    object: "an object",
    array: "a list",
    string: "a string",
    // Every number in this API is an integer.
    number: "an integer",
    int: "an integer",
    boolean: "true or false",
    record: "a map of strings",
  };
  return names[type] ?? type;
}

/**
 * Validates a policy `spec` against the schema of its API version.
 *
 * @example
 * ```ts
 * const result = validateSpec("v1", { traps: [] });
 * // { ok: false, problems: [{ field: "spec.traps", message: "must list at least one trap" }] }
 * ```
 *
 * @param version The API version the object was written in.
 * @param spec The object's `spec`, as received.
 * @returns The parsed spec with defaults applied, or every problem found.
 */
export function validateSpec<V extends ApiVersion>(
  version: V,
  spec: unknown,
): SpecValidation<ReturnType<typeof SPEC_SCHEMAS[V]["parse"]>> {
  const schema = SPEC_SCHEMAS[version];
  if (!schema) {
    return {
      ok: false,
      problems: [{ field: "apiVersion", message: `must be one of ${VERSIONS.join(", ")}` }],
    };
  }
  const result = schema.safeParse(spec);
  // `parse`'s return type rather than `z.infer`, as in policy.ts, to keep zod's helper types out
  // of the public signature.
  if (result.success) {
    return { ok: true, spec: result.data as ReturnType<typeof SPEC_SCHEMAS[V]["parse"]> };
  }
  return {
    ok: false,
    problems: result.error.issues.map((issue) => ({
      field: fieldPath("spec", issue.path),
      message: describeIssue(issue),
    })),
  };
}

/**
 * Formats problems as one line each, `field: message`.
 *
 * @param problems As returned by {@linkcode validateSpec}.
 * @returns The text an admission response or a log line carries.
 */
export function formatProblems(problems: readonly PolicyProblem[]): string {
  return problems.map(({ field, message }) => `${field}: ${message}`).join("; ");
}
