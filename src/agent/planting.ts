/**
 * One planting round: makes sure every target's trap file exists in its container and turns
 * each result into an outcome for status and, when planted, a registration for the kernel's
 * leader. Files planted recently and unchanged in the policy are trusted until re-verified,
 * or until their watch signals a change: then the change is judged (trap_changes.ts), reported,
 * and a trap inode that was moved away stays armed next to the newly planted one.
 *
 * @module
 */
import { rfc3339 } from "../common/time.ts";
import { canonicalJson } from "../api/mod.ts";
import type { TrapPlanter } from "./agent_options.ts";
import type { TrapRegistration } from "./alert.ts";
import type { TrapTarget } from "./desired.ts";
import type { Logger } from "./log.ts";
import type { PlantOutcome } from "./status.ts";
import { describe } from "./describe.ts";
import {
  type ArmedFile,
  judgeChange,
  type TrapChange,
  type TrapSignals,
  type Verification,
} from "./trap_changes.ts";

/** Changes kept per target for status (the newest). */
const MAX_CHANGES = 8;

/** What the last round knew of one target. */
export interface Planted {
  target: TrapTarget;
  outcome: PlantOutcome;
  registration?: TrapRegistration;
  /** The armed file's identity, to judge later changes against. */
  file?: ArmedFile;
  /** Registrations of trap inodes the container moved away: still the bait, still armed. */
  retained: TrapRegistration[];
  /** The newest changes the container made to this trap, oldest first. */
  changes: TrapChange[];
  checkedAt: number;
}

/** Options of {@linkcode plantTargets}. */
export interface PlantOptions {
  planter: TrapPlanter;
  log: Logger;
  nodeName: string;
  /** Re-check a planted file this often (a workload may delete or replace it). */
  verifyMs: number;
  /** Watch signals since the last round, by target key: those targets are verified now. */
  signals?: ReadonlyMap<string, TrapSignals>;
  /** Told of each change a container made to a trap file. */
  onChange?: (target: TrapTarget, change: TrapChange) => void;
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
    const signals = options.signals?.get(target.key);
    // The key names (policy, trap index, container); an edited trap under the same index
    // must be planted again.
    const unchanged = previous !== undefined &&
      canonicalJson([previous.target.trap, previous.target.alertVersion]) ===
        canonicalJson([target.trap, target.alertVersion]);
    // A moved inode stays armed while it exists and is watched; an edited trap drops them.
    const retained = unchanged
      ? previous.retained.filter((r) =>
        !signals?.deleted.has(r.ino) && options.planter.watches?.(target.key, r.ino) === true
      )
      : [];
    const changes = unchanged ? previous.changes : [];
    if (
      unchanged && previous.outcome.ok && !signals && now - previous.checkedAt < verifyMs
    ) {
      next.set(target.key, { ...previous, target, retained });
      continue;
    }
    let result;
    try {
      result = await options.planter.plant(target);
    } catch (error) {
      result = { ok: false as const, reason: "Other", message: describe(error) };
    }
    if (result.ok) {
      // A decoy the container touched (its mark gone) is still the decoy this round found.
      const sameFile = unchanged && previous.file?.ino === result.ino &&
        previous.file?.btime === result.btime;
      const decoy = result.decoy ?? (sameFile ? previous.registration?.decoy : undefined);
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
        ...(target.trap.callbackFormat ? { callbackFormat: target.trap.callbackFormat } : {}),
        action: target.trap.action,
        pod: target.pod,
        container: target.container,
        node: options.nodeName,
        cgroupId: result.cgroupId,
        ...(decoy ? { decoy } : {}),
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
      const file = {
        ino: result.ino,
        mode: result.mode,
        uid: result.uid,
        gid: result.gid,
        nlink: result.nlink,
        ...(result.btime === undefined ? {} : { btime: result.btime }),
      };
      const found = { ok: true as const, file, created: result.created ?? false };
      const kept = judge(previous, unchanged, found, signals, retained, changes, options);
      next.set(target.key, {
        target,
        outcome: decoy ? { target, ok: true, decoy } : { target, ok: true },
        registration,
        file,
        retained: kept.filter((r) => r.ino !== result.ino),
        changes,
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
      const found = { ok: false as const, reason: result.reason };
      const kept = judge(previous, unchanged, found, signals, retained, changes, options);
      next.set(target.key, {
        target,
        outcome: { target, ok: false, reason: result.reason, message: result.message },
        retained: kept,
        changes,
        checkedAt: now,
      });
    }
  }
  // Watches follow what is armed: the directories of every target, the inodes still armed.
  options.planter.keep?.(
    new Map(
      [...next].map(([key, planted]) => [
        key,
        new Set(
          [planted.registration, ...planted.retained].flatMap((r) => r ? [r.ino] : []),
        ),
      ]),
    ),
  );
  return next;
}

/**
 * Judges what became of the previously armed file, records and reports a change, and returns
 * the registrations of moved inodes that stay armed.
 */
function judge(
  previous: Planted | undefined,
  unchanged: boolean,
  found: Verification,
  signals: TrapSignals | undefined,
  retained: TrapRegistration[],
  changes: TrapChange[],
  options: PlantOptions,
): TrapRegistration[] {
  const armed = previous?.registration;
  if (!unchanged || !armed || !previous?.file) return retained;
  const ino = previous.file.ino;
  // A link count change without a rename on an inode that had one link is its last link
  // going (unlink's events may reach us before its IN_DELETE_SELF does).
  const lastLinkGone = signals?.attrib.has(ino) === true && !signals.moved.has(ino) &&
    (previous.file.nlink ?? 1) <= 1;
  const deleted = signals?.deleted.has(ino) === true;
  const alive = !deleted && !lastLinkGone &&
    (signals?.moved.has(ino) === true ||
      options.planter.watches?.(previous.target.key, ino) === true);
  const verdict = judgeChange(previous.file, found, alive, deleted);
  if (verdict.change) {
    const change = { ...verdict.change, time: rfc3339() };
    changes.push(change);
    if (changes.length > MAX_CHANGES) changes.splice(0, changes.length - MAX_CHANGES);
    options.onChange?.(previous.target, change);
  }
  return verdict.keepOldArmed ? [...retained, armed] : retained;
}
