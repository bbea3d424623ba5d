/**
 * A map of an open BPF object, and the fd-level map helpers for threads that hold only an fd.
 *
 * @module
 */
import { cString, libbpf, libc, readCString } from "./_ffi.ts";
import { BpfError } from "./bpf_error.ts";
import type { BpfObject } from "./bpf_object.ts";

/** BPF map types whose values are per CPU (lookups return one value per possible CPU). */
const PERCPU_MAP_TYPES = new Set([
  5, /* PERCPU_HASH */
  6, /* PERCPU_ARRAY */
  10, /* LRU_PERCPU_HASH */
]);

/** Flags of {@linkcode BpfMap.update}, as in the kernel's uapi. */
export const BPF_ANY = 0;
/** Create a new element only if it does not exist. */
export const BPF_NOEXIST = 1;
/** Update an existing element only. */
export const BPF_EXIST = 2;
/** A map of a {@linkcode BpfObject}; valid while the object is open. */
export class BpfMap {
  #obj: BpfObject;
  #ptr: Deno.PointerObject;

  /** @internal */
  constructor(obj: BpfObject, ptr: Deno.PointerObject) {
    this.#obj = obj;
    this.#ptr = ptr;
  }

  #pointer(): Deno.PointerObject {
    void this.#obj.pointer;
    return this.#ptr;
  }

  /** The map name (internal maps: `<object>.bss`, ...). */
  get name(): string {
    return readCString(libbpf().bpf_map__name(this.#pointer()));
  }

  /** The map's fd once loaded, else -1. */
  get fd(): number {
    const fd = libbpf().bpf_map__fd(this.#pointer());
    return fd < 0 ? -1 : fd;
  }

  /**
   * Before load: use the existing map behind `fd` (a pinned map opened with
   * {@linkcode openPinned}) instead of creating one. libbpf takes its own copy of the fd.
   *
   * @throws {BpfError} op `bpf_map__reuse_fd`
   */
  reuseFd(fd: number): void {
    const rc = libbpf().bpf_map__reuse_fd(this.#pointer(), fd);
    if (rc < 0) {
      throw new BpfError("bpf_map__reuse_fd", -rc, `Cannot reuse an fd for BPF map "${this.name}"`);
    }
  }

  /**
   * After load: pins the map at `path` in bpffs, so that it outlives this process.
   *
   * @throws {BpfError} op `bpf_obj_pin`
   */
  pin(path: string): void {
    const rc = libbpf().bpf_obj_pin(this.fd, cString(path));
    if (rc < 0) {
      throw new BpfError("bpf_obj_pin", -rc, `Cannot pin BPF map "${this.name}" at ${path}`);
    }
  }

  /** The map type (enum bpf_map_type). */
  get type(): number {
    return libbpf().bpf_map__type(this.#pointer());
  }

  /** Key size in bytes. */
  get keySize(): number {
    return libbpf().bpf_map__key_size(this.#pointer());
  }

  /** Value size in bytes (of one CPU's value for per-CPU maps). */
  get valueSize(): number {
    return libbpf().bpf_map__value_size(this.#pointer());
  }

  /** Size of the buffer a lookup fills: valueSize, or one 8-byte aligned slot per possible CPU. */
  get lookupSize(): number {
    if (!PERCPU_MAP_TYPES.has(this.type)) return this.valueSize;
    return Math.ceil(this.valueSize / 8) * 8 * possibleCpus();
  }

  /** max_entries (bytes for ring buffers). */
  get maxEntries(): number {
    return libbpf().bpf_map__max_entries(this.#pointer());
  }

  /**
   * Sets max_entries (bytes for ring buffers: a power of two multiple of the page size).
   * Call before load.
   *
   * @throws {BpfError} op `bpf_map__set_max_entries` (EBUSY after load)
   */
  setMaxEntries(n: number): void {
    const rc = libbpf().bpf_map__set_max_entries(this.#pointer(), n);
    if (rc < 0) {
      throw new BpfError(
        "bpf_map__set_max_entries",
        -rc,
        `Cannot set max_entries of BPF map "${this.name}" to ${n}`,
      );
    }
  }

  #checkSizes(key: Uint8Array, value?: Uint8Array): void {
    if (key.length !== this.keySize) {
      throw new RangeError(
        `Key of BPF map "${this.name}" must be ${this.keySize} bytes, got ${key.length}`,
      );
    }
    if (value && value.length !== this.lookupSize) {
      throw new RangeError(
        `Value of BPF map "${this.name}" must be ${this.lookupSize} bytes, got ${value.length}`,
      );
    }
  }

  /**
   * Creates or updates an element.
   *
   * @param flags {@linkcode BPF_ANY}, {@linkcode BPF_NOEXIST} or {@linkcode BPF_EXIST}
   * @throws {BpfError} op `bpf_map_update_elem`, e.g. E2BIG when the map is full
   */
  update(key: Uint8Array<ArrayBuffer>, value: Uint8Array<ArrayBuffer>, flags = BPF_ANY): void {
    this.#checkSizes(key, value);
    const rc = libbpf().bpf_map_update_elem(this.fd, key, value, BigInt(flags));
    if (rc < 0) {
      throw new BpfError("bpf_map_update_elem", -rc, `Cannot update BPF map "${this.name}"`);
    }
  }

  /**
   * Reads an element.
   *
   * @returns the value (one slot per CPU for per-CPU maps), or null when absent
   * @throws {BpfError} op `bpf_map_lookup_elem` for errors other than ENOENT
   */
  lookup(key: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> | null {
    this.#checkSizes(key);
    const value = new Uint8Array(this.lookupSize);
    const rc = libbpf().bpf_map_lookup_elem(this.fd, key, value);
    if (rc === -2) return null;
    if (rc < 0) {
      throw new BpfError("bpf_map_lookup_elem", -rc, `Cannot look up BPF map "${this.name}"`);
    }
    return value;
  }

  /**
   * Deletes an element.
   *
   * @returns false when it did not exist
   * @throws {BpfError} op `bpf_map_delete_elem` for errors other than ENOENT
   */
  delete(key: Uint8Array<ArrayBuffer>): boolean {
    this.#checkSizes(key);
    const rc = libbpf().bpf_map_delete_elem(this.fd, key);
    if (rc === -2) return false;
    if (rc < 0) {
      throw new BpfError("bpf_map_delete_elem", -rc, `Cannot delete from BPF map "${this.name}"`);
    }
    return true;
  }

  /**
   * All keys, in the map's order (a snapshot-free walk: concurrent changes may show).
   *
   * @throws {BpfError} op `bpf_map_get_next_key`
   */
  keys(): Uint8Array<ArrayBuffer>[] {
    const out: Uint8Array<ArrayBuffer>[] = [];
    let prev: Uint8Array<ArrayBuffer> | null = null; // NULL asks for the first key
    for (;;) {
      const next = new Uint8Array(this.keySize);
      const rc = libbpf().bpf_map_get_next_key(this.fd, prev, next);
      if (rc === -2) return out;
      if (rc < 0) {
        throw new BpfError("bpf_map_get_next_key", -rc, `Cannot walk BPF map "${this.name}"`);
      }
      out.push(next);
      prev = next;
    }
  }
}

/** The number of possible CPUs (the size of per-CPU map values), from libbpf. */
export function possibleCpus(): number {
  const n = libbpf().libbpf_num_possible_cpus();
  if (n < 0) throw new BpfError("libbpf_num_possible_cpus", -n, "Cannot count possible CPUs");
  return n;
}

/**
 * Looks up a map element by map fd (for threads that only have the fd, e.g. a Worker).
 *
 * @param value filled with the value (per-CPU maps: one 8-byte aligned slot per CPU)
 * @returns false when the key is absent
 * @throws {BpfError} op `bpf_map_lookup_elem` for errors other than ENOENT
 */
export function lookupElem(
  fd: number,
  key: Uint8Array<ArrayBuffer>,
  value: Uint8Array<ArrayBuffer>,
): boolean {
  const rc = libbpf().bpf_map_lookup_elem(fd, key, value);
  if (rc === -2) return false;
  if (rc < 0) throw new BpfError("bpf_map_lookup_elem", -rc, `Cannot look up BPF map fd ${fd}`);
  return true;
}

/**
 * Opens the BPF object (map, program or link) pinned at `path` and returns a new fd to it,
 * which the caller closes with {@linkcode closeFd}.
 *
 * @throws {BpfError} op `bpf_obj_get` (ENOENT: no such pin)
 */
export function openPinned(path: string): number {
  const fd = libbpf().bpf_obj_get(cString(path));
  if (fd < 0) {
    throw new BpfError("bpf_obj_get", -fd, `Cannot open the BPF object pinned at ${path}`);
  }
  return fd;
}

/** Closes an fd from {@linkcode openPinned}. */
export function closeFd(fd: number): void {
  libc().close(fd);
}
