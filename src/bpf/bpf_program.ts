/**
 * A program of an open BPF object: autoload before loading, attach after.
 *
 * @module
 */
import { errno, libbpf, readCString } from "./_ffi.ts";
import { captureLog } from "./_libbpf_log.ts";
import { BpfError } from "./bpf_error.ts";
import { BpfLink } from "./bpf_link.ts";
import type { BpfObject } from "./bpf_object.ts";

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
