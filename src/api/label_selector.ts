/**
 * `matchExpressions`, as Kubernetes label selectors have them: `In`, `NotIn`, `Exists` and
 * `DoesNotExist`, each on one label key, all of a group's expressions ANDed with its other
 * selectors. The rules and the meaning are Kubernetes' own (k8s.io/apimachinery labels), so a
 * selector copied from a Deployment selects the same pods here.
 *
 * @module
 */

/** The operators of a label expression. */
export const LABEL_OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"] as const;
/** A label expression's operator. */
export type LabelOperator = typeof LABEL_OPERATORS[number];

/** One label expression as the policy writes it. */
export interface LabelExpression {
  key: string;
  operator: LabelOperator;
  values?: string[];
}

const NAME = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Explains what is wrong with a label key, or returns `undefined` for a good one: an optional
 * DNS subdomain prefix of at most 253 characters and `/`, then a name of at most 63 characters
 * of letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
 */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const rule = "a label key is an optional DNS prefix and '/', then a name of at most 63 " +
    "letters, digits, '-', '_' or '.' that starts and ends with a letter or digit";
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `${rule}; the prefix "${prefix}" is not a DNS subdomain`;
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name)) {
    return `${rule}, got "${key}"`;
  }
  return undefined;
}

/** Explains what is wrong with a label value, or returns `undefined` for a good one. */
export function labelValueProblem(value: string): string | undefined {
  if (value === "" || (value.length <= 63 && NAME.test(value))) return undefined;
  return "a label value is empty or at most 63 letters, digits, '-', '_' or '.' that starts and " +
    `ends with a letter or digit, got "${value}"`;
}

/** Explains what is wrong with an expression's values for its operator, if anything. */
export function expressionValuesProblem(expression: LabelExpression): string | undefined {
  const count = expression.values?.length ?? 0;
  if ((expression.operator === "In" || expression.operator === "NotIn") && count === 0) {
    return `values must not be empty for operator ${expression.operator}`;
  }
  if ((expression.operator === "Exists" || expression.operator === "DoesNotExist") && count > 0) {
    return `values must be empty for operator ${expression.operator}`;
  }
  return undefined;
}

/**
 * Compiles a group's expressions into one test of a pod's labels.
 *
 * @example
 * ```ts
 * const matches = compileLabelExpressions([{ key: "tier", operator: "NotIn", values: ["dev"] }]);
 * matches({ tier: "prod" }); // true
 * matches({}); // true: NotIn also selects pods without the label, as Kubernetes does
 * ```
 *
 * @param expressions The group's `matchExpressions`, already validated.
 * @returns Whether a pod with these labels satisfies every expression.
 */
export function compileLabelExpressions(
  expressions: readonly LabelExpression[],
): (labels: Readonly<Record<string, string>>) => boolean {
  const tests = expressions.map(({ key, operator, values }) => {
    const set = new Set(values ?? []);
    const has = (labels: Readonly<Record<string, string>>) => Object.hasOwn(labels, key);
    switch (operator) {
      case "In":
        return (labels: Readonly<Record<string, string>>) => has(labels) && set.has(labels[key]);
      case "NotIn":
        return (labels: Readonly<Record<string, string>>) => !has(labels) || !set.has(labels[key]);
      case "Exists":
        return has;
      case "DoesNotExist":
        return (labels: Readonly<Record<string, string>>) => !has(labels);
    }
  });
  return (labels) => tests.every((test) => test(labels));
}
