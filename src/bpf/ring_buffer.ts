import { errno, libbpf } from "./_ffi.ts";
import { BpfError } from "./bpf_error.ts";

/**
 * Reads a BPF ring buffer map through libbpf's ring_buffer API.
 *
 * `poll()` blocks the calling thread for up to its timeout and calls `onSample`
 * synchronously on that thread, so use it in a Worker (or with timeout 0).
 *
 * @example
 * ```ts
 * using rb = new RingBuffer(obj.map("events").fd, (data) => console.log(data.length));
 * rb.poll(100);
 * ```
 */
export class RingBuffer {
  /**
   * What `onSample` returns to end the current {@linkcode RingBuffer.poll} or
   * {@linkcode RingBuffer.consume} after this record (which counts as consumed); the
   * next call continues with the following record.
   */
  static readonly STOP = -1;

  #ptr: Deno.PointerObject | null;
  #count = 0;
  #stopped = false;
  #callback: Deno.UnsafeCallback<{
    readonly parameters: readonly ["pointer", "pointer", "usize"];
    readonly result: "i32";
  }>;

  /**
   * Opens the ring buffer (maps it and creates its epoll fd).
   *
   * @param mapFd fd of a BPF_MAP_TYPE_RINGBUF map
   * @param onSample receives each record; the bytes are only valid during the call
   *   (copy what you keep); return {@linkcode RingBuffer.STOP} to end the current poll
   * @throws {BpfError} op `ring_buffer__new`
   */
  constructor(mapFd: number, onSample: (data: Uint8Array) => number | void) {
    this.#callback = new Deno.UnsafeCallback(
      { parameters: ["pointer", "pointer", "usize"], result: "i32" } as const,
      (_ctx, data, size) => {
        if (data === null) return 0;
        const bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(data, Number(size)));
        this.#count++;
        if (onSample(bytes) !== RingBuffer.STOP) return 0;
        this.#stopped = true;
        return RingBuffer.STOP; // libbpf stops after this record and returns it as an error
      },
    );
    const ptr = libbpf().ring_buffer__new(mapFd, this.#callback.pointer, null, null);
    if (ptr === null) {
      const code = errno();
      this.#callback.close();
      throw new BpfError("ring_buffer__new", code, `Cannot read ring buffer map fd ${mapFd}`);
    }
    this.#ptr = ptr;
  }

  /**
   * Waits up to `timeoutMs` for records and consumes all available.
   *
   * @returns the number of records consumed
   * @throws {BpfError} op `ring_buffer__poll` (EINTR is reported as 0 records)
   */
  poll(timeoutMs: number): number {
    if (this.#ptr === null) throw new TypeError("Ring buffer is closed");
    this.#count = 0;
    this.#stopped = false;
    const rc = libbpf().ring_buffer__poll(this.#ptr, timeoutMs);
    if (this.#stopped) return this.#count;
    if (rc === -4) return 0;
    if (rc < 0) throw new BpfError("ring_buffer__poll", -rc, "Cannot poll ring buffer");
    return rc;
  }

  /**
   * Consumes the available records without waiting.
   *
   * @returns the number of records consumed
   * @throws {BpfError} op `ring_buffer__consume`
   */
  consume(): number {
    if (this.#ptr === null) throw new TypeError("Ring buffer is closed");
    this.#count = 0;
    this.#stopped = false;
    const rc = libbpf().ring_buffer__consume(this.#ptr);
    if (this.#stopped) return this.#count;
    if (rc < 0) throw new BpfError("ring_buffer__consume", -rc, "Cannot consume ring buffer");
    return rc;
  }

  /** Frees the ring buffer (unmaps it, closes its epoll fd) and the callback. Idempotent. */
  close(): void {
    if (this.#ptr === null) return;
    libbpf().ring_buffer__free(this.#ptr);
    this.#ptr = null;
    this.#callback.close();
  }

  /** Same as {@linkcode RingBuffer.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
