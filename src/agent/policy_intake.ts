/**
 * The policies a reconcile pass works with, sorted from what the watch holds: live ones
 * (validated again, since a policy may have been stored before today's rules or past a webhook
 * that was down), ones being deleted, and invalid ones, which are reported in their status and
 * otherwise ignored.
 *
 * @module
 */
import { formatProblems, type KivePolicyV2, validateSpec } from "../api/mod.ts";
import type { Logger } from "./log.ts";

/** The policies of one pass, by what the agent does with them. */
export interface PolicyIntake {
  /** Valid and not being deleted, with their specs as validated (defaults applied). */
  live: KivePolicyV2[];
  /** Being deleted: disarmed, then their finalizer released. */
  deleting: KivePolicyV2[];
  /** Invalid, by uid, with their problems in one line. */
  invalid: Map<string, { policy: KivePolicyV2; problems: string }>;
}

/**
 * Sorts the watched policies; logs each invalid one once, when it first turns up invalid.
 *
 * @param objects The policies the watch holds (v2alpha1).
 * @param wasInvalid The uids the previous pass found invalid (not logged again).
 * @param log Where the warning goes.
 */
export function takeInPolicies(
  objects: readonly KivePolicyV2[],
  wasInvalid: ReadonlySet<string>,
  log: Logger,
): PolicyIntake {
  const intake: PolicyIntake = { live: [], deleting: [], invalid: new Map() };
  for (const object of objects) {
    if (object.metadata.deletionTimestamp) {
      intake.deleting.push(object);
      continue;
    }
    const checked = validateSpec("v2alpha1", object.spec);
    if (checked.ok) {
      intake.live.push({ ...object, spec: checked.spec });
      continue;
    }
    const problems = formatProblems(checked.problems);
    const uid = object.metadata.uid ?? "";
    if (!wasInvalid.has(uid)) {
      log.warn("ignoring invalid KivePolicy", {
        policy: `${object.metadata.namespace}/${object.metadata.name}`,
        problems,
      });
    }
    intake.invalid.set(uid, { policy: object, problems });
  }
  return intake;
}
