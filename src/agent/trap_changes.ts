/**
 * What a container did to a trap file it was given: removed, replaced, moved away, chmod-ed,
 * chown-ed, linked elsewhere, or replaced by a symlink or something that is not a file. Each is
 * a sign of someone looking around, and is reported (log, pod Event, status, metric).
 *
 * The watch on the files (src/containers/trap_watch.ts) only says that something happened;
 * the verdict comes from comparing what was armed with what a fresh verification finds.
 *
 * @module
 */
import type { TrapFileSignal } from "../containers/mod.ts";
import type { AgentMetrics } from "../delivery/mod.ts";
import type { TrapTarget } from "./desired.ts";
import type { Logger } from "./log.ts";
import type { PodEvents } from "./pod_events.ts";

/** Kinds of change, as the status, the Event and the metric name them. */
export type TrapChangeKind =
  | "Removed"
  | "Replaced"
  | "Moved"
  | "ReplacedBySymlink"
  | "ReplacedByNonFile"
  | "ModeChanged"
  | "OwnerChanged"
  | "Linked";

/** One change seen on a trap file in one container. */
export interface TrapChange {
  kind: TrapChangeKind;
  /** What happened, with the inodes and modes involved. */
  message: string;
  /** When the agent saw it (RFC 3339). */
  time: string;
}

/** The identity of an armed trap file that a change is judged against. */
export interface ArmedFile {
  ino: string;
  mode?: number;
  uid?: number;
  gid?: number;
  nlink?: number;
  /** Birth time (ns, decimal), where the file system keeps one. */
  btime?: string;
}

/** The watch signals of one trap since the last planting round. */
export interface TrapSignals {
  /** Something changed on the path (a name or a directory). */
  path: boolean;
  /** Inodes whose attributes changed. */
  attrib: Set<string>;
  /** Inodes renamed (still linked somewhere). */
  moved: Set<string>;
  /** Inodes whose last link is gone. */
  deleted: Set<string>;
}

/**
 * Folds watch signals into per-trap sets, on top of what is already pending.
 *
 * @param pending The signals not yet acted on, by key; updated in place.
 * @param signals What the watch delivered.
 */
export function addSignals(
  pending: Map<string, TrapSignals>,
  signals: readonly TrapFileSignal[],
): void {
  for (const signal of signals) {
    let entry = pending.get(signal.key);
    if (!entry) {
      entry = { path: false, attrib: new Set(), moved: new Set(), deleted: new Set() };
      pending.set(signal.key, entry);
    }
    if (signal.kind === "path") entry.path = true;
    else if (signal.kind === "attrib") entry.attrib.add(signal.ino);
    else if (signal.kind === "moved") entry.moved.add(signal.ino);
    else entry.deleted.add(signal.ino);
  }
}

/** What a fresh verification of a trap's path found. */
export type Verification =
  | { ok: true; file: ArmedFile; created: boolean }
  | { ok: false; reason: string };

/** The verdict on one armed trap file after a verification. */
export interface ChangeVerdict {
  /** The change to report, if any. */
  change?: Omit<TrapChange, "time">;
  /**
   * The armed inode is no longer at the path but still exists in the container (renamed, or
   * its directory was): it stays armed, since it is still the bait.
   */
  keepOldArmed: boolean;
}

/**
 * Compares the armed trap file with what is at its path now.
 *
 * @param armed The inode that was armed for this trap.
 * @param found What verifying the path found.
 * @param oldInodeAlive Whether the armed inode is known to still exist (it was moved, or it is
 *   still watched and no deletion was seen); false when that cannot be known.
 * @param oldInodeGone Whether the watch saw the armed inode's last link go (`IN_DELETE_SELF`).
 * @returns The change, and whether the old inode stays armed.
 */
export function judgeChange(
  armed: ArmedFile,
  found: Verification,
  oldInodeAlive: boolean,
  oldInodeGone = false,
): ChangeVerdict {
  if (found.ok && sameFile(armed, found, oldInodeGone)) {
    return { change: attributeChange(armed, found.file), keepOldArmed: false };
  }
  if (!found.ok && found.reason === "ContainerGone") return { keepOldArmed: false };
  const away = oldInodeAlive
    ? `trap inode ${armed.ino} was moved away from its path and stays armed`
    : `trap inode ${armed.ino} is gone`;
  if (found.ok) {
    const kind = oldInodeAlive ? "Moved" : found.created ? "Removed" : "Replaced";
    const reused = found.file.ino === armed.ino ? ", the same number reused" : "";
    const now = found.created
      ? `a new trap file (inode ${found.file.ino}${reused}) was planted in its place`
      : `the file the container put there (inode ${found.file.ino}${reused}) is armed instead`;
    return { change: { kind, message: `${away}; ${now}` }, keepOldArmed: oldInodeAlive };
  }
  const kind = found.reason === "PathIsSymlink"
    ? "ReplacedBySymlink"
    : found.reason === "NotARegularFile"
    ? "ReplacedByNonFile"
    : oldInodeAlive
    ? "Moved"
    : "Removed";
  return {
    change: { kind, message: `${away}; the path cannot be armed now (${found.reason})` },
    keepOldArmed: oldInodeAlive,
  };
}

/**
 * Whether the file at the path is still the armed one. An inode number alone does not say:
 * ext4 gives a freed number to the next file created, so a trap removed and planted again (or
 * replaced by the container) often has its old number. A file this verification created is
 * never the armed one (the path was empty); otherwise a different birth time, or, where the
 * file system keeps none, a deletion of the armed inode that the watch saw, says it is another.
 */
function sameFile(
  armed: ArmedFile,
  found: { file: ArmedFile; created: boolean },
  oldInodeGone: boolean,
): boolean {
  if (found.file.ino !== armed.ino || found.created) return false;
  if (armed.btime !== undefined && found.file.btime !== undefined) {
    return armed.btime === found.file.btime;
  }
  return !oldInodeGone;
}

function attributeChange(
  armed: ArmedFile,
  now: ArmedFile,
): Omit<TrapChange, "time"> | undefined {
  if (armed.mode !== undefined && now.mode !== undefined && armed.mode !== now.mode) {
    return {
      kind: "ModeChanged",
      message: `mode of trap inode ${armed.ino} changed from 0${armed.mode.toString(8)} to 0${
        now.mode.toString(8)
      }; it stays armed`,
    };
  }
  if (
    armed.uid !== undefined && now.uid !== undefined &&
    (armed.uid !== now.uid || armed.gid !== now.gid)
  ) {
    return {
      kind: "OwnerChanged",
      message: `owner of trap inode ${armed.ino} changed from ${armed.uid}:${armed.gid} to ` +
        `${now.uid}:${now.gid} (host ids); it stays armed`,
    };
  }
  if (armed.nlink !== undefined && now.nlink !== undefined && now.nlink > armed.nlink) {
    return {
      kind: "Linked",
      message:
        `trap inode ${armed.ino} got another name (links: ${armed.nlink} -> ${now.nlink}); ` +
        `opens through any name alert`,
    };
  }
  return undefined;
}

/** Where {@linkcode TrapChangeReporter} reports. */
export interface TrapChangeReporterOptions {
  log: Logger;
  metrics?: AgentMetrics;
  events: PodEvents;
}

/** Reports each change a container made to a trap file: log, metric and pod Event. */
export class TrapChangeReporter {
  readonly #o: TrapChangeReporterOptions;

  /** @param options The log, the metrics and the pod Events. */
  constructor(options: TrapChangeReporterOptions) {
    this.#o = options;
  }

  /**
   * Reports one change (status shows it from the planting state).
   *
   * @param target The trap in its container.
   * @param change What happened to its file.
   */
  report(target: TrapTarget, change: TrapChange): void {
    const policy = `${target.policy.namespace}/${target.policy.name}`;
    this.#o.log.warn("trap file changed", {
      policy,
      path: target.trap.path,
      pod: `${target.pod.namespace}/${target.pod.name}`,
      container: target.container.name,
      change: change.kind,
      message: change.message,
    });
    this.#o.metrics?.trapFileChanges.inc({ kind: change.kind });
    this.#o.events.emit(target.pod, {
      reason: "TrapFileChanged",
      action: change.kind,
      note: `trap ${target.trap.path} of KivePolicy ${policy} in container ` +
        `${target.container.name}: ${change.message}`,
    });
  }
}
