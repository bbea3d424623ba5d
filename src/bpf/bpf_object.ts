/**
 * A BPF object file opened with libbpf: its programs, its maps and the layouts of its BTF
 * structs.
 *
 * @module
 */
import { cString, errno, libbpf, readCString } from "./_ffi.ts";
import { captureLog } from "./_libbpf_log.ts";
import { BpfError } from "./bpf_error.ts";
import type { BpfLink } from "./bpf_link.ts";
import { BpfMap } from "./bpf_map.ts";
import { BpfProgram } from "./bpf_program.ts";

const BTF_KIND_STRUCT = 4;

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
