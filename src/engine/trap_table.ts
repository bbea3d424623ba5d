/**
 * The engine's table of armed inodes, kept equal to the kernel's `trap_map`: each key's trap
 * id, flags and loss-counter slot. The programs skip everything while the live armed count is
 * 0, so the count is raised before a new key enters the map and lowered after one leaves.
 * Freed loss slots may still hold losses: they come back as lost notices.
 *
 * @module
 */
import type { BpfMap } from "../bpf/mod.ts";
import { keyString } from "./_codec.ts";
import { decodeKey, decodeValue, encodeKey, encodeValue, TRAP_FLAG_BLOCK } from "./_structs.ts";
import type { LossLedger } from "./loss_ledger.ts";
import type { LostNotice, TrapKey } from "./types.ts";

/** What the table needs beside its map. */
export interface TrapTableHooks {
  /** Writes the live armed count into the programs' configuration. */
  setArmedCount(n: number): void;
  /** Takes the notice of losses a freed slot still held. */
  onLost(notice: LostNotice): void;
}

/** Armed keys, their trap ids, flags and loss slots. */
export class TrapTable {
  readonly #map: BpfMap;
  readonly #ledger: LossLedger;
  readonly #hooks: TrapTableHooks;
  readonly #armed = new Map<string, { key: TrapKey; trapId: number; flags: number }>();

  /**
   * @param map The `trap_map`.
   * @param ledger The loss-counter slots.
   * @param hooks The armed count and where lost notices go.
   */
  constructor(map: BpfMap, ledger: LossLedger, hooks: TrapTableHooks) {
    this.#map = map;
    this.#ledger = ledger;
    this.#hooks = hooks;
  }

  /** Number of armed keys. */
  get size(): number {
    return this.#armed.size;
  }

  /** Takes over the keys of an adopted map, with their trap ids and slots. */
  adopt(): void {
    for (const k of this.#map.keys()) {
      const value = this.#map.lookup(k);
      if (!value) continue;
      const key = decodeKey(k);
      const { trapId, flags, slot } = decodeValue(value);
      this.#ledger.adoptKey(trapId, slot);
      this.#armed.set(keyString(key), { key, trapId, flags });
    }
    this.#ledger.finishAdoption();
  }

  /**
   * Arms or re-arms a checked key.
   *
   * @throws {BpfError} op `bpf_map_update_elem`, e.g. E2BIG when the map is full
   */
  arm(key: TrapKey, trapId: number, block: boolean): void {
    const id = keyString(key);
    const previous = this.#armed.get(id);
    const slot = this.#ledger.slotOf(trapId);
    const flags = block ? TRAP_FLAG_BLOCK : 0;
    const value = encodeValue({ trapId, flags, slot });
    // The programs skip everything while armed is 0: raise it before the key is in the map.
    if (!previous) this.#hooks.setArmedCount(this.#armed.size + 1);
    try {
      this.#map.update(encodeKey(key), value);
    } catch (error) {
      if (!previous) this.#hooks.setArmedCount(this.#armed.size);
      this.#lost(this.#ledger.removeKey(trapId, false)); // frees a slot no key uses
      throw error;
    }
    this.#armed.set(id, { key: { dev: key.dev, ino: key.ino }, trapId, flags });
    if (previous && previous.trapId === trapId) return;
    this.#ledger.addKey(trapId);
    if (previous) this.#lost(this.#ledger.removeKey(previous.trapId));
  }

  /**
   * Disarms a checked key.
   *
   * @returns false when it was not armed
   */
  disarm(key: TrapKey): boolean {
    const id = keyString(key);
    const armed = this.#armed.get(id);
    const deleted = this.#map.delete(encodeKey(key));
    if (!armed) return deleted;
    this.#armed.delete(id);
    this.#hooks.setArmedCount(this.#armed.size);
    this.#lost(this.#ledger.removeKey(armed.trapId));
    return true;
  }

  /** The armed keys and their trap ids. */
  list(): { key: TrapKey; trapId: number; block: boolean }[] {
    return [...this.#armed.values()].map((a) => ({
      key: { ...a.key },
      trapId: a.trapId,
      block: (a.flags & TRAP_FLAG_BLOCK) !== 0,
    }));
  }

  #lost(notice: LostNotice | null): void {
    if (notice) this.#hooks.onLost(notice);
  }
}
