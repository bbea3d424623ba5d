/**
 * The engine's cgroup prefilter: the set of cgroup v2 ids whose tasks the kernel programs check,
 * kept equal to the `trapped_cgroups` map, and the switch in the live configuration that turns
 * it on. Ordering matters: the filter is switched off before ids are removed and on only once
 * the set is complete, so no task is ever skipped that should be checked.
 *
 * @module
 */
import type { BpfMap } from "../bpf/mod.ts";
import { decodeCgroupId, encodeCgroupId } from "./_structs.ts";

/** The cgroup ids the programs check, or none (every task). */
export class CgroupFilter {
  readonly #map: BpfMap;
  readonly #max: number;
  readonly #switch: (on: boolean) => void;
  readonly #isOn: () => boolean;
  #ids: Set<bigint> | null = null;

  /**
   * @param map The `trapped_cgroups` map.
   * @param max Its size.
   * @param setSwitch Writes the filter's on/off switch into the live configuration.
   * @param isOn Reads that switch.
   */
  constructor(map: BpfMap, max: number, setSwitch: (on: boolean) => void, isOn: () => boolean) {
    this.#map = map;
    this.#max = max;
    this.#switch = setSwitch;
    this.#isOn = isOn;
  }

  /** Takes over the ids in an adopted map (its filter was on). */
  adopt(): void {
    this.#ids = new Set(
      this.#map.keys().map(decodeCgroupId),
    );
  }

  /** The ids checked, or null when every task is. */
  ids(): bigint[] | null {
    return this.#ids ? [...this.#ids] : null;
  }

  /**
   * Checks only the tasks of these cgroups, or (null) every task again.
   *
   * @throws {RangeError} for a bad id, or more ids than the map holds
   * @throws {BpfError} op `bpf_map_update_elem` / `bpf_map_delete_elem`
   */
  set(ids: Iterable<bigint> | null): void {
    const current = this.#ids ?? new Set<bigint>();
    if (ids === null) {
      if (this.#isOn()) this.#switch(false); // off first: no task is skipped meanwhile
      for (const id of current) this.#map.delete(encodeCgroupId(id));
      this.#ids = null;
      return;
    }
    const next = new Set<bigint>();
    for (const id of ids) {
      if (typeof id !== "bigint" || id < 0n || id >= 1n << 64n) {
        throw new RangeError(`A cgroup id must be a 64-bit bigint, got ${String(id)}`);
      }
      next.add(id);
    }
    if (next.size > this.#max) {
      throw new RangeError(
        `Cannot filter on ${next.size} cgroups: the engine holds ${this.#max} (maxCgroups)`,
      );
    }
    // Ids in both sets stay in the map throughout; remove first to make room.
    this.#ids = current;
    for (const id of [...current]) {
      if (next.has(id)) continue;
      this.#map.delete(encodeCgroupId(id));
      current.delete(id);
    }
    const value = new Uint8Array([1]);
    for (const id of next) {
      if (current.has(id)) continue;
      this.#map.update(encodeCgroupId(id), value);
      current.add(id);
    }
    if (!this.#isOn()) this.#switch(true); // on last: the set is complete
  }
}
