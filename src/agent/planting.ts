/**
 * One planting round: makes sure every target's trap file exists in its container and turns
 * each result into an outcome for status and, when planted, a registration for the kernel's
 * leader. Files planted recently and unchanged in the policy are trusted until re-verified.
 *
 * @module
 */
import { canonicalJson } from "../api/mod.ts";
import type { TrapPlanter } from "./agent_options.ts";
import type { TrapRegistration } from "./alert.ts";
import type { TrapTarget } from "./desired.ts";
import type { Logger } from "./log.ts";
import type { PlantOutcome } from "./status.ts";
import { describe } from "./describe.ts";

/** What the last round knew of one target. */
export interface Planted {
  target: TrapTarget;
  outcome: PlantOutcome;
  registration?: TrapRegistration;
  checkedAt: number;
}

/** Options of {@linkcode plantTargets}. */
export interface PlantOptions {
  planter: TrapPlanter;
  log: Logger;
  nodeName: string;
  /** Re-check a planted file this often (a workload may delete or replace it). */
  verifyMs: number;
}

/**
 * Plants every target (or trusts a recent, unchanged plant), logging each change of outcome.
 *
 * @param last The last round's state, by target key.
 * @param targets This round's targets.
 * @param options The planter and how often to re-verify.
 * @returns The new state, by target key.
 */
export async function plantTargets(
  last: ReadonlyMap<string, Planted>,
  targets: readonly TrapTarget[],
  options: PlantOptions,
): Promise<Map<string, Planted>> {
  const now = Date.now();
  const verifyMs = options.verifyMs;
  const next = new Map<string, Planted>();
  try {
    await options.planter.prepare?.(targets);
  } catch (error) {
    options.log.warn("cannot look up container processes", { error: describe(error) });
  }
  for (const target of targets) {
    const previous = last.get(target.key);
    // The key names (policy, trap index, container); an edited trap under the same index
    // must be planted again.
    const unchanged = previous !== undefined &&
      canonicalJson([previous.target.trap, previous.target.alertVersion]) ===
        canonicalJson([target.trap, target.alertVersion]);
    if (unchanged && previous.outcome.ok && now - previous.checkedAt < verifyMs) {
      next.set(target.key, { ...previous, target });
      continue;
    }
    let result;
    try {
      result = await options.planter.plant(target);
    } catch (error) {
      result = { ok: false as const, reason: "Other", message: describe(error) };
    }
    if (result.ok) {
      const registration: TrapRegistration = {
        dev: result.dev,
        ino: result.ino,
        policy: {
          namespace: target.policy.namespace,
          name: target.policy.name,
          uid: target.policy.uid,
        },
        trapIndex: target.trapIndex,
        path: target.trap.path,
        alertVersion: target.alertVersion,
        metadata: target.trap.metadata ?? {},
        callback: target.trap.callback,
        callbackCABundle: target.trap.callbackCABundle,
        callbackHeadersSecret: target.trap.callbackHeadersFrom?.secretName,
        action: target.trap.action,
        pod: target.pod,
        container: target.container,
        node: options.nodeName,
        cgroupId: result.cgroupId,
      };
      if (!previous?.outcome.ok) {
        options.log.info("trap planted", {
          policy: `${target.policy.namespace}/${target.policy.name}`,
          path: target.trap.path,
          pod: `${target.pod.namespace}/${target.pod.name}`,
          container: target.container.name,
          inode: result.ino,
        });
      }
      next.set(target.key, {
        target,
        outcome: { target, ok: true },
        registration,
        checkedAt: now,
      });
    } else {
      if (
        previous?.outcome.ok !== false ||
        (previous.outcome as { reason: string }).reason !== result.reason
      ) {
        options.log.warn("trap not planted", {
          policy: `${target.policy.namespace}/${target.policy.name}`,
          path: target.trap.path,
          pod: `${target.pod.namespace}/${target.pod.name}`,
          container: target.container.name,
          reason: result.reason,
          message: result.message,
        });
      }
      next.set(target.key, {
        target,
        outcome: { target, ok: false, reason: result.reason, message: result.message },
        checkedAt: now,
      });
    }
  }
  return next;
}
