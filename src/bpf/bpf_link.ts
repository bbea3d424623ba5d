/**
 * Attached programs: a link per attach, which can be pinned in bpffs so that the program
 * stays attached after this process exits, and opened again from its pin by a successor.
 *
 * @module
 */
import { cString, errno, libbpf } from "./_ffi.ts";
import { BpfError } from "./bpf_error.ts";
import type { BpfObject } from "./bpf_object.ts";

/** An attached program. Closing it detaches the program unless the link is pinned. */
export class BpfLink {
  #obj: BpfObject;
  #ptr: Deno.PointerObject | null;
  #program: string;

  /** @internal */
  constructor(obj: BpfObject, ptr: Deno.PointerObject, program: string) {
    this.#obj = obj;
    this.#ptr = ptr;
    this.#program = program;
    obj.track(this, true);
  }

  /**
   * Opens a link pinned at `path` (by this or an earlier process): the program it holds
   * stays attached; closing the returned link only drops this process's reference.
   *
   * @param obj the object whose lifetime the link shares (closed with it)
   * @param path the pin, e.g. `/sys/fs/bpf/kivebpf/<id>/link_trap_exec`
   * @param program the program's name, for messages
   * @throws {BpfError} op `bpf_link__open` (ENOENT: no such pin)
   */
  static openPinned(obj: BpfObject, path: string, program: string): BpfLink {
    const ptr = libbpf().bpf_link__open(cString(path));
    if (ptr === null) {
      throw new BpfError("bpf_link__open", errno(), `Cannot open the BPF link pinned at ${path}`);
    }
    return new BpfLink(obj, ptr, program);
  }

  /** The name of the attached program. */
  get program(): string {
    return this.#program;
  }

  /** The link's fd, or -1 once closed. */
  get fd(): number {
    return this.#ptr === null ? -1 : libbpf().bpf_link__fd(this.#ptr);
  }

  /**
   * Pins the link at `path` in bpffs: the program then stays attached until the pin is
   * removed (unlink) and no process holds the link any more.
   *
   * @throws {BpfError} op `bpf_link__pin` (EEXIST, ENOENT for a missing directory, EPERM
   *   outside bpffs)
   */
  pin(path: string): void {
    if (this.#ptr === null) throw new TypeError(`BPF link of "${this.#program}" is closed`);
    const rc = libbpf().bpf_link__pin(this.#ptr, cString(path));
    if (rc < 0) {
      throw new BpfError("bpf_link__pin", -rc, `Cannot pin BPF link "${this.#program}" at ${path}`);
    }
  }

  /**
   * Frees the link: detaches the program, unless it is pinned (then only this process's
   * reference goes). Idempotent.
   *
   * @throws {BpfError} op `bpf_link__destroy` (the link is freed anyway)
   */
  close(): void {
    if (this.#ptr === null) return;
    const rc = libbpf().bpf_link__destroy(this.#ptr);
    this.#ptr = null;
    this.#obj.track(this, false);
    if (rc < 0) {
      throw new BpfError("bpf_link__destroy", -rc, `Cannot detach BPF program "${this.#program}"`);
    }
  }

  /** Same as {@linkcode BpfLink.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
