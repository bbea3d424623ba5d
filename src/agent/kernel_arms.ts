/**
 * The leader's view of the kernel: every trap registration of every node that shares this
 * kernel, grouped by inode, and the routing of kernel events back to the policies they hit.
 *
 * One kernel trap id stands for one inode; any number of registrations (two policies trapping
 * one file, one file shared by two containers) hang off it. An access yields one alert per
 * (policy, trap), never one per registration, and never two for the same access.
 *
 * @module
 */
import type { AccessEvent, TrapKey } from "../engine/mod.ts";
import type { TrapRegistration } from "./alert.ts";

/** The part of the engine the leader drives. */
export interface ArmTarget {
  /** The hook backend; only `lsm` can deny an open (`block`). */
  readonly backend?: string;
  arm(key: TrapKey, trapId: number, options?: { block?: boolean }): void;
  disarm(key: TrapKey): boolean;
}

/** An inode the kernel refused to arm or disarm, with the registrations behind it. */
export interface ArmFailure {
  /** What was refused: arming leaves a gap; a refused disarm leaves the inode armed. */
  op: "arm" | "disarm";
  /** The registrations of the inode; each is reported on its own policy and pod. */
  registrations: readonly TrapRegistration[];
  /** What the engine said. */
  error: unknown;
}

/** What one {@linkcode KernelArms.sync} changed, and what it could not do. */
export interface SyncResult {
  /** Inodes newly armed. */
  armed: number;
  /** Inodes disarmed. */
  disarmed: number;
  /** Inodes the kernel refused (a full map, a refused update); the rest are unaffected. */
  failed: ArmFailure[];
  /**
   * Registrations whose `block` action this backend cannot enforce: they are armed to alert
   * only (every backend but lsm).
   */
  blockNotEnforced: TrapRegistration[];
}

/** Whether an engine on this backend can deny opens. */
export function canBlock(target: Pick<ArmTarget, "backend">): boolean {
  return target.backend === "lsm";
}

interface InodeEntry {
  key: TrapKey;
  trapId: number;
  block: boolean;
  registrations: TrapRegistration[];
}

/** Identifies the container a process runs in, to prefer the registration of that container. */
export type ContainerOfProcess = (event: AccessEvent) => string | undefined;

/** Keeps the kernel's trap map equal to the registrations, and routes events. */
export class KernelArms {
  #byInode = new Map<string, InodeEntry>();
  #byTrapId = new Map<number, InodeEntry>();
  #nextTrapId = 1;

  /** Number of armed inodes. */
  get armedInodes(): number {
    return this.#byInode.size;
  }

  /**
   * Arms what is new, disarms what is gone, re-arms inodes whose block flag changed.
   *
   * @param target The engine.
   * @param registrations Every registration of this kernel.
   * @returns Counts of what changed, and what failed, item by item.
   */
  sync(
    target: ArmTarget,
    registrations: readonly TrapRegistration[],
  ): SyncResult {
    const wanted = new Map<string, TrapRegistration[]>();
    for (const registration of registrations) {
      const id = `${registration.dev}:${registration.ino}`;
      const list = wanted.get(id);
      if (list) list.push(registration);
      else wanted.set(id, [registration]);
    }
    const result: SyncResult = { armed: 0, disarmed: 0, failed: [], blockNotEnforced: [] };
    const blocking = canBlock(target);
    for (const [id, entry] of this.#byInode) {
      if (wanted.has(id)) continue;
      try {
        target.disarm(entry.key);
      } catch (error) {
        // Left armed in the kernel: keep it known so the next sync retries, and routing of
        // its events still works meanwhile.
        result.failed.push({ op: "disarm", registrations: entry.registrations, error });
        continue;
      }
      this.#byInode.delete(id);
      this.#byTrapId.delete(entry.trapId);
      result.disarmed++;
    }
    for (const [id, list] of wanted) {
      const wantsBlock = list.some((registration) => registration.action === "block");
      if (wantsBlock && !blocking) {
        result.blockNotEnforced.push(...list.filter((r) => r.action === "block"));
      }
      // A block the backend cannot enforce is armed to alert: the access is still reported.
      const block = wantsBlock && blocking;
      const existing = this.#byInode.get(id);
      if (existing) {
        existing.registrations = list;
        if (existing.block !== block) {
          try {
            target.arm(existing.key, existing.trapId, { block });
            existing.block = block;
          } catch (error) {
            result.failed.push({ op: "arm", registrations: list, error });
          }
        }
        continue;
      }
      let key: TrapKey;
      try {
        key = { dev: list[0].dev, ino: BigInt(list[0].ino) };
      } catch (error) {
        result.failed.push({ op: "arm", registrations: list, error });
        continue;
      }
      const trapId = this.#nextTrapId++;
      try {
        target.arm(key, trapId, { block });
      } catch (error) {
        // One inode the kernel refuses (a full map, a bad key) must not keep the others dark.
        result.failed.push({ op: "arm", registrations: list, error });
        continue;
      }
      const entry = { key, trapId, block, registrations: list };
      this.#byInode.set(id, entry);
      this.#byTrapId.set(trapId, entry);
      result.armed++;
    }
    return result;
  }

  /**
   * Takes over what an adopted engine has armed (a predecessor's pinned trap map): the
   * inodes keep their trap ids, so the events and loss counts that accumulated under those
   * ids route once {@linkcode KernelArms.sync} has attached the registrations; inodes no
   * registration wants are disarmed by that sync.
   *
   * @param armed The engine's armed keys.
   */
  adopt(armed: readonly { key: TrapKey; trapId: number; block: boolean }[]): void {
    for (const { key, trapId, block } of armed) {
      const entry: InodeEntry = { key, trapId, block, registrations: [] };
      this.#byInode.set(`${key.dev}:${key.ino}`, entry);
      this.#byTrapId.set(trapId, entry);
      this.#nextTrapId = Math.max(this.#nextTrapId, trapId + 1);
    }
  }

  /** The armed inodes as `dev:ino`, sorted (what a leader publishes for its followers). */
  armedKeys(): string[] {
    return [...this.#byInode.keys()].sort();
  }

  /** Whether the registration's inode is armed in the kernel now. */
  isArmed(registration: Pick<TrapRegistration, "dev" | "ino">): boolean {
    return this.#byInode.has(`${registration.dev}:${registration.ino}`);
  }

  /** Forgets everything (the engine was closed). */
  reset(): void {
    this.#byInode.clear();
    this.#byTrapId.clear();
  }

  /**
   * The registrations an access should be reported for: one per (policy, trap), preferring the
   * registration of the container the process runs in.
   *
   * @param event The kernel event.
   * @param containerOf Finds the accessing process's container id, if it is a known one.
   * @returns The registrations to alert for; empty when the trap was disarmed meanwhile.
   */
  route(event: AccessEvent, containerOf?: ContainerOfProcess): TrapRegistration[] {
    const entry = this.#byTrapId.get(event.trapId) ??
      this.#byInode.get(`${event.dev}:${event.ino}`);
    if (!entry) return [];
    const accessor = containerOf?.(event);
    const chosen = new Map<string, TrapRegistration>();
    for (const registration of entry.registrations) {
      const id = `${registration.policy.uid}/${registration.trapIndex}`;
      const current = chosen.get(id);
      if (
        !current ||
        (accessor && registration.container.id === accessor && current.container.id !== accessor)
      ) {
        chosen.set(id, registration);
      }
    }
    return [...chosen.values()];
  }

  /** The registrations behind a kernel trap id, for loss reports. */
  registrationsOf(trapId: number): readonly TrapRegistration[] {
    return this.#byTrapId.get(trapId)?.registrations ?? [];
  }
}
