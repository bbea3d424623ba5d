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
  arm(key: TrapKey, trapId: number, options?: { block?: boolean }): void;
  disarm(key: TrapKey): boolean;
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
   * @returns Counts of what changed.
   */
  sync(
    target: ArmTarget,
    registrations: readonly TrapRegistration[],
  ): { armed: number; disarmed: number } {
    const wanted = new Map<string, TrapRegistration[]>();
    for (const registration of registrations) {
      const id = `${registration.dev}:${registration.ino}`;
      const list = wanted.get(id);
      if (list) list.push(registration);
      else wanted.set(id, [registration]);
    }
    let armed = 0;
    let disarmed = 0;
    for (const [id, entry] of this.#byInode) {
      if (wanted.has(id)) continue;
      target.disarm(entry.key);
      this.#byInode.delete(id);
      this.#byTrapId.delete(entry.trapId);
      disarmed++;
    }
    for (const [id, list] of wanted) {
      const block = list.some((registration) => registration.action === "block");
      const existing = this.#byInode.get(id);
      if (existing) {
        existing.registrations = list;
        if (existing.block !== block) {
          target.arm(existing.key, existing.trapId, { block });
          existing.block = block;
        }
        continue;
      }
      const key: TrapKey = { dev: list[0].dev, ino: BigInt(list[0].ino) };
      const trapId = this.#nextTrapId++;
      target.arm(key, trapId, { block });
      const entry = { key, trapId, block, registrations: list };
      this.#byInode.set(id, entry);
      this.#byTrapId.set(trapId, entry);
      armed++;
    }
    return { armed, disarmed };
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
