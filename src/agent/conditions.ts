/**
 * The policy-wide totals and conditions, computed from the nodes' reports (`KiveNodeReport`s):
 * `Ready` (every matching
 * running container armed) and, for policies with `block` traps, `BlockEnforced` (every block
 * denies opens, or which nodes only alert). A stored policy that today's rules refuse gets
 * `Ready=False` with reason `InvalidSpec` and the problems, instead of only a log line.
 *
 * @module
 */
import type { KivePolicyV2, NodeReportBody } from "../api/mod.ts";
import { rfc3339 } from "../common/time.ts";

/** Status reason: a `block` trap is armed to alert only; the backend cannot deny opens. */
export const REASON_BLOCK_NOT_ENFORCED = "BlockNotEnforced";
/** Condition reason: the stored spec breaks today's rules, so the agents ignore the policy. */
export const REASON_INVALID_SPEC = "InvalidSpec";

/** One condition, as `status.conditions[]` holds it. */
export interface PolicyCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/** The policy-wide part of the status. */
export interface PolicyConditions {
  armed: number;
  notArmed: number;
  nodeCount: number;
  conditions: PolicyCondition[];
}

/**
 * Computes the totals and the conditions of one policy. Messages name at most a few nodes,
 * so the status stays small whatever the number of nodes.
 *
 * @param policy The policy, with the status the API server has.
 * @param nodes The reports of the nodes on this policy.
 * @param invalid The problems of a spec the agents refuse, when it is refused.
 * @param now The time for a condition whose status changes.
 * @returns What to apply.
 */
export function policyConditions(
  policy: KivePolicyV2,
  nodes: readonly NodeReportBody[],
  invalid?: string,
  now = Date.now(),
): PolicyConditions {
  const armed = invalid === undefined ? nodes.reduce((sum, node) => sum + node.armed, 0) : 0;
  const allProblems = nodes.flatMap((node) =>
    (node.traps ?? []).flatMap((trap) => trap.problems ?? [])
  );
  // A block that is not enforced is still armed (to alert): a warning, not a gap.
  const problems = allProblems.filter((p) => p.reason !== REASON_BLOCK_NOT_ENFORCED);
  const unenforced = nodes.filter((node) =>
    (node.traps ?? []).some((trap) =>
      trap.problems?.some((p) => p.reason === REASON_BLOCK_NOT_ENFORCED)
    )
  );
  const reasons = [...new Set(problems.map((p) => p.reason))].join(", ");
  const [status, reason, message]: [PolicyCondition["status"], string, string] = invalid
    ? ["False", REASON_INVALID_SPEC, `the agents ignore this policy: ${invalid}`.slice(0, 1024)]
    : armed === 0 && problems.length === 0
    ? ["False", "NoMatch", "no running container matches the policy"]
    : armed === 0
    ? ["False", "NotArmed", `no container armed: ${reasons}`]
    : problems.length > 0
    ? [
      "False",
      "PartiallyArmed",
      `${armed} container(s) armed on ${nodes.length} node(s); not armed: ${reasons}`,
    ]
    : [
      "True",
      "Armed",
      `${armed} container(s) armed on ${nodes.length} node(s)${
        unenforced.length > 0 ? "; block not enforced on some (alert only)" : ""
      }`,
    ];
  const conditions = [condition(policy, "Ready", status, reason, message, now)];
  const blockIndexes = new Set(
    (policy.spec?.traps ?? []).flatMap((trap, index) => trap.action === "block" ? [index] : []),
  );
  const blockArmed = nodes.some((node) =>
    (node.traps ?? []).some((trap) => blockIndexes.has(trap.index) && trap.armed > 0)
  );
  if (invalid === undefined && blockIndexes.size > 0) {
    conditions.push(
      unenforced.length === 0 && !blockArmed
        ? condition(policy, "BlockEnforced", "Unknown", "NotArmed", "no block trap is armed", now)
        : unenforced.length === 0
        ? condition(policy, "BlockEnforced", "True", "Enforced", "block traps deny opens", now)
        : condition(
          policy,
          "BlockEnforced",
          "False",
          REASON_BLOCK_NOT_ENFORCED,
          `block traps only alert on ${
            someOf(unenforced.map((n) => `${n.node} (${n.backend ?? "no backend"})`))
          }: opens are denied only on the lsm backend`.slice(0, 1024),
          now,
        ),
    );
  }
  // Each report counts all its containers not armed; its problem lists are capped.
  const notArmed = invalid === undefined
    ? nodes.reduce((sum, node) => sum + (node.notArmed ?? 0), 0)
    : 0;
  return { armed, notArmed, nodeCount: nodes.length, conditions };
}

/** The first few names, and how many more: a message that does not grow with the cluster. */
function someOf(names: readonly string[], shown = 5): string {
  const more = names.length - shown;
  return names.slice(0, shown).join(", ") + (more > 0 ? ` and ${more} more` : "");
}

/** Whether applying `next` would change nothing in the policy's status. */
export function conditionsCurrent(policy: KivePolicyV2, next: PolicyConditions): boolean {
  const status = policy.status;
  if (
    status?.armed !== next.armed || status.notArmed !== next.notArmed ||
    status.nodeCount !== next.nodeCount
  ) {
    return false;
  }
  const current = policy.status?.conditions ?? [];
  if (current.length !== next.conditions.length) return false;
  return next.conditions.every((c) => {
    const old = current.find((o) => o.type === c.type);
    return old?.status === c.status && old.reason === c.reason && old.message === c.message &&
      old.observedGeneration === c.observedGeneration;
  });
}

function condition(
  policy: KivePolicyV2,
  type: string,
  status: PolicyCondition["status"],
  reason: string,
  message: string,
  now: number,
): PolicyCondition {
  const current = policy.status?.conditions?.find((c) => c.type === type);
  return {
    type,
    status,
    reason,
    message,
    observedGeneration: policy.metadata.generation,
    lastTransitionTime: current?.status === status && current.lastTransitionTime
      ? current.lastTransitionTime
      : rfc3339(now),
  };
}
