/**
 * Per-trap loss accounting: each trap id armed gets a slot of the kernel's `lost_counts`
 * (where the programs count the events the ring buffer could not take) and of
 * `lost_reported` (how much of it user space has reported, so that an engine adopting pinned
 * maps reports only the rest). Slots are reused once a trap id has no key left.
 *
 * @module
 */
import type { BpfMap } from "../bpf/mod.ts";
import type { LostNotice } from "./types.ts";

interface TrapSlot {
  slot: number;
  keys: number;
  lostSeen: bigint;
}

function slotKey(slot: number): Uint8Array<ArrayBuffer> {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, slot, true);
  return key;
}

/** The slots of the armed trap ids and what each has lost. */
export class LossLedger {
  readonly #lost: BpfMap;
  readonly #reported: BpfMap;
  readonly #maxTraps: number;
  #traps = new Map<number, TrapSlot>();
  #freeSlots: number[] = [];
  #nextSlot = 1;
  /** Losses of trap ids whose slot was released, for the counters. */
  #retired = new Map<number, bigint>();

  /**
   * @param lost the `lost_counts` map
   * @param reported the `lost_reported` map
   * @param maxTraps slots available (the maps hold maxTraps + 1 entries; 0 is the total)
   */
  constructor(lost: BpfMap, reported: BpfMap, maxTraps: number) {
    this.#lost = lost;
    this.#reported = reported;
    this.#maxTraps = maxTraps;
  }

  #read(map: BpfMap, slot: number): bigint {
    const value = map.lookup(slotKey(slot));
    return value ? new DataView(value.buffer).getBigUint64(0, true) : 0n;
  }

  #writeReported(slot: number, reported: bigint): void {
    const value = new Uint8Array(8);
    new DataView(value.buffer).setBigUint64(0, reported, true);
    this.#reported.update(slotKey(slot), value);
  }

  /**
   * The slot of `trapId`, allocated on its first use (its key count starts at 0: call
   * {@linkcode LossLedger.addKey} once the key is in the trap map).
   *
   * @throws {RangeError} when every slot is taken
   */
  slotOf(trapId: number): number {
    let t = this.#traps.get(trapId);
    if (!t) {
      const slot = this.#freeSlots.pop() ?? this.#nextSlot++;
      if (slot > this.#maxTraps) throw new RangeError(`More than ${this.#maxTraps} trap ids armed`);
      t = { slot, keys: 0, lostSeen: 0n };
      this.#traps.set(trapId, t);
    }
    return t.slot;
  }

  /** One more key of `trapId` is armed. */
  addKey(trapId: number): void {
    const t = this.#traps.get(trapId);
    if (t) t.keys++;
  }

  /**
   * One key of `trapId` is gone (or was never armed: `keys` stays as it was). When none is
   * left the slot is released: returns a notice for its unreported losses, if any.
   */
  removeKey(trapId: number, wasArmed = true): LostNotice | null {
    const t = this.#traps.get(trapId);
    if (!t) return null;
    if (wasArmed) t.keys--;
    if (t.keys > 0) return null;
    const lost = this.#read(this.#lost, t.slot);
    this.#retired.set(trapId, (this.#retired.get(trapId) ?? 0n) + lost);
    this.#lost.update(slotKey(t.slot), new Uint8Array(this.#lost.lookupSize));
    this.#writeReported(t.slot, 0n);
    this.#traps.delete(trapId);
    this.#freeSlots.push(t.slot);
    return lost > t.lostSeen ? { kind: "lost", trapId, count: Number(lost - t.lostSeen) } : null;
  }

  /** An adopted key of `trapId` in `slot`: what the slot already reported is not again. */
  adoptKey(trapId: number, slot: number): void {
    let t = this.#traps.get(trapId);
    if (!t) {
      t = { slot, keys: 0, lostSeen: this.#read(this.#reported, slot) };
      this.#traps.set(trapId, t);
    }
    t.keys++;
  }

  /** After the adopted keys: the slots they do not use are free. */
  finishAdoption(): void {
    const used = new Set([...this.#traps.values()].map((t) => t.slot));
    let highest = 0;
    for (const slot of used) highest = Math.max(highest, slot);
    this.#nextSlot = highest + 1;
    for (let slot = 1; slot < this.#nextSlot; slot++) {
      if (!used.has(slot)) this.#freeSlots.push(slot);
    }
  }

  /** Reads the kernel's counters: a notice for each trap that lost more since the last poll. */
  poll(): LostNotice[] {
    const notices: LostNotice[] = [];
    for (const [trapId, t] of this.#traps) {
      const lost = this.#read(this.#lost, t.slot);
      if (lost > t.lostSeen) {
        notices.push({ kind: "lost", trapId, count: Number(lost - t.lostSeen) });
        t.lostSeen = lost;
        this.#writeReported(t.slot, lost);
      }
    }
    return notices;
  }

  /** Losses reported so far per trap id, released slots included. */
  reportedByTrap(): Map<number, number> {
    const out = new Map<number, number>();
    const add = (trapId: number, n: bigint) => {
      if (n > 0n) out.set(trapId, (out.get(trapId) ?? 0) + Number(n));
    };
    for (const [trapId, n] of this.#retired) add(trapId, n);
    for (const [trapId, t] of this.#traps) add(trapId, t.lostSeen);
    return out;
  }
}
