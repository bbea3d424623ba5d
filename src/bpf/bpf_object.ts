import { cString, errno, libbpf, libc, readCString } from "./_ffi.ts";
import { BpfError } from "./bpf_error.ts";
import { BpfLink } from "./bpf_link.ts";

const BTF_KIND_STRUCT = 4;
const LIBBPF_INFO = 1;
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

/** A member of a struct as the object's BTF describes it. */
export interface StructMember {
  /** Member name. */
  name: string;
  /** Byte offset in the struct. */
  offset: number;
  /** Size in bytes. */
  size: number;
}

/** A struct's layout as the object's BTF describes it. */
export interface StructLayout {
  /** sizeof(struct). */
  size: number;
  /** Members in declaration order. */
  members: StructMember[];
}

/**
 * Runs `fn` while libbpf's messages (warnings and info, not debug) are collected
 * instead of printed. The callback is synchronous: only use around calls made on
 * this thread.
 */
function captureLog<T>(lines: string[], fn: () => T): T {
  const lib = libbpf();
  const buf = new Uint8Array(1024);
  const callback = new Deno.UnsafeCallback(
    { parameters: ["i32", "pointer", "pointer"], result: "i32" } as const,
    (level, format, args) => {
      if (level > LIBBPF_INFO || format === null || args === null) return 0;
      const n = libc().vsnprintf(buf, BigInt(buf.length), format, args);
      if (n > 0) {
        lines.push(
          new TextDecoder().decode(buf.subarray(0, Math.min(n, buf.length - 1))).trimEnd(),
        );
      }
      return 0;
    },
  );
  const previous = lib.libbpf_set_print(callback.pointer);
  try {
    return fn();
  } finally {
    lib.libbpf_set_print(previous);
    callback.close();
  }
}

/**
 * A BPF object file opened with libbpf: its programs and maps, loaded into the
 * kernel by {@linkcode BpfObject.load}.
 *
 * @example
 * ```ts
 * using obj = BpfObject.open(".cache/bpf/trap.bpf.o");
 * obj.program("trap_lsm_file_open").setAutoload(false);
 * obj.load();
 * using link = obj.program("trap_sys_exit").attach();
 * ```
 */
export class BpfObject {
  #ptr: Deno.PointerObject | null;
  #path: string;
  #links = new Set<BpfLink>();
  #log: string[] = [];

  private constructor(ptr: Deno.PointerObject, path: string, log: string[]) {
    this.#ptr = ptr;
    this.#path = path;
    this.#log = log;
  }

  /**
   * Opens (parses) a BPF ELF object; nothing is loaded into the kernel yet.
   *
   * @param path the object file
   * @returns the opened object; close it
   * @throws {BpfError} op `bpf_object__open_file` when libbpf cannot open it
   */
  static open(path: string): BpfObject {
    const lines: string[] = [];
    let code = 0;
    const ptr = captureLog(lines, () => {
      const p = libbpf().bpf_object__open_file(cString(path), null);
      if (p === null) code = errno();
      return p;
    });
    if (ptr === null) {
      throw new BpfError("bpf_object__open_file", code, `Cannot open BPF object "${path}"`, {
        log: lines.join("\n"),
      });
    }
    return new BpfObject(ptr, path, lines);
  }

  /** The file the object was opened from. */
  get path(): string {
    return this.#path;
  }

  /** libbpf's warnings printed while opening, loading and attaching. */
  get log(): string {
    return this.#log.join("\n");
  }

  /** Whether {@linkcode BpfObject.close} was called. */
  get closed(): boolean {
    return this.#ptr === null;
  }

  /** @internal the native pointer; throws once closed. */
  get pointer(): Deno.PointerObject {
    if (this.#ptr === null) throw new TypeError(`BPF object "${this.#path}" is closed`);
    return this.#ptr;
  }

  /** All programs of the object. */
  programs(): BpfProgram[] {
    const out: BpfProgram[] = [];
    const lib = libbpf();
    for (
      let p = lib.bpf_object__next_program(this.pointer, null);
      p !== null;
      p = lib.bpf_object__next_program(this.pointer, p)
    ) out.push(new BpfProgram(this, p));
    return out;
  }

  /** All maps of the object, including the internal ones (`.bss`, `.rodata`, ...). */
  maps(): BpfMap[] {
    const out: BpfMap[] = [];
    const lib = libbpf();
    for (
      let p = lib.bpf_object__next_map(this.pointer, null);
      p !== null;
      p = lib.bpf_object__next_map(this.pointer, p)
    ) out.push(new BpfMap(this, p));
    return out;
  }

  /**
   * The program named `name` (the C function name).
   *
   * @throws {RangeError} when there is no such program
   */
  program(name: string): BpfProgram {
    const found = this.programs().find((p) => p.name === name);
    if (!found) throw new RangeError(`BPF object "${this.#path}" has no program "${name}"`);
    return found;
  }

  /**
   * The map named `name`; internal maps can be found by their suffix (e.g. `.bss`).
   *
   * @throws {RangeError} when there is no such map
   */
  map(name: string): BpfMap {
    const all = this.maps();
    const found = all.find((m) => m.name === name) ??
      (name.startsWith(".") ? all.find((m) => m.name.endsWith(name)) : undefined);
    if (!found) throw new RangeError(`BPF object "${this.#path}" has no map "${name}"`);
    return found;
  }

  /**
   * Creates the maps and loads the programs whose autoload is on into the kernel.
   *
   * @throws {BpfError} op `bpf_object__load`, e.g. EPERM when the kernel refuses a program
   */
  load(): void {
    const lines: string[] = [];
    const rc = captureLog(lines, () => libbpf().bpf_object__load(this.pointer));
    this.#log.push(...lines);
    if (rc < 0) {
      throw new BpfError("bpf_object__load", -rc, `Cannot load BPF object "${this.#path}"`, {
        log: lines.join("\n"),
      });
    }
  }

  /**
   * The layout of `struct name` from the object's BTF, to check user-space decoders.
   *
   * @throws {RangeError} when the BTF has no such struct
   */
  structLayout(name: string): StructLayout {
    const lib = libbpf();
    const btf = lib.bpf_object__btf(this.pointer);
    if (btf === null) throw new RangeError(`BPF object "${this.#path}" has no BTF`);
    const id = lib.btf__find_by_name_kind(btf, cString(name), BTF_KIND_STRUCT);
    if (id < 0) throw new RangeError(`BPF object "${this.#path}" has no struct "${name}" in BTF`);
    const t = lib.btf__type_by_id(btf, id);
    if (t === null) throw new RangeError(`BTF type ${id} of "${this.#path}" is missing`);
    const view = new Deno.UnsafePointerView(t);
    const info = view.getUint32(4);
    const vlen = info & 0xffff;
    const kflag = info >>> 31;
    const members: StructMember[] = [];
    for (let i = 0; i < vlen; i++) {
      const base = 12 + i * 12;
      const bits = view.getUint32(base + 8);
      const bitOffset = kflag ? bits & 0xffffff : bits;
      const type = view.getUint32(base + 4);
      members.push({
        name: readCString(lib.btf__name_by_offset(btf, view.getUint32(base))),
        offset: bitOffset / 8,
        size: Number(lib.btf__resolve_size(btf, type)),
      });
    }
    return { size: view.getUint32(8), members };
  }

  /** @internal records a link so that close() destroys it. */
  track(link: BpfLink, attached: boolean): void {
    if (attached) this.#links.add(link);
    else this.#links.delete(link);
  }

  /** @internal appends libbpf messages captured by a program or map call. */
  appendLog(lines: string[]): void {
    this.#log.push(...lines);
  }

  /** Destroys the links still attached, then unloads programs and closes map fds. Idempotent. */
  close(): void {
    if (this.#ptr === null) return;
    for (const link of [...this.#links]) link.close();
    libbpf().bpf_object__close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as {@linkcode BpfObject.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** A program of a {@linkcode BpfObject}; valid while the object is open. */
export class BpfProgram {
  #obj: BpfObject;
  #ptr: Deno.PointerObject;

  /** @internal */
  constructor(obj: BpfObject, ptr: Deno.PointerObject) {
    this.#obj = obj;
    this.#ptr = ptr;
  }

  #pointer(): Deno.PointerObject {
    void this.#obj.pointer; // throws once the object is closed
    return this.#ptr;
  }

  /** The C function name. */
  get name(): string {
    return readCString(libbpf().bpf_program__name(this.#pointer()));
  }

  /** The ELF section, e.g. `tp_btf/sys_exit`. */
  get sectionName(): string {
    return readCString(libbpf().bpf_program__section_name(this.#pointer()));
  }

  /** The program's fd once loaded, else -1. */
  get fd(): number {
    const fd = libbpf().bpf_program__fd(this.#pointer());
    return fd < 0 ? -1 : fd;
  }

  /**
   * Whether {@linkcode BpfObject.load} loads this program. Call before load.
   *
   * @throws {BpfError} op `bpf_program__set_autoload` (EBUSY after load)
   */
  setAutoload(autoload: boolean): void {
    const rc = libbpf().bpf_program__set_autoload(this.#pointer(), autoload);
    if (rc < 0) {
      throw new BpfError(
        "bpf_program__set_autoload",
        -rc,
        `Cannot set autoload of BPF program "${this.name}"`,
      );
    }
  }

  /**
   * Attaches the loaded program as its section says (lsm, fentry, kprobe, tp_btf, ...).
   *
   * @returns the link; closing it detaches the program
   * @throws {BpfError} op `bpf_program__attach`
   */
  attach(): BpfLink {
    const lines: string[] = [];
    let code = 0;
    const ptr = captureLog(lines, () => {
      const p = libbpf().bpf_program__attach(this.#pointer());
      if (p === null) code = errno();
      return p;
    });
    this.#obj.appendLog(lines);
    if (ptr === null) {
      throw new BpfError(
        "bpf_program__attach",
        code,
        `Cannot attach BPF program "${this.name}" (${this.sectionName})`,
        { log: lines.join("\n") },
      );
    }
    return new BpfLink(this.#obj, ptr, this.name);
  }
}

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
