import { libbpf } from "./_ffi.ts";

/**
 * A libbpf or BPF system call failed.
 *
 * @example
 * ```ts
 * try {
 *   obj.load();
 * } catch (error) {
 *   if (error instanceof BpfError && error.errno === 1) console.log("not permitted");
 * }
 * ```
 */
export class BpfError extends Error {
  /** The C function that failed, e.g. `bpf_object__load`. */
  readonly op: string;
  /** The positive errno (or libbpf error code, 4000 and up). */
  readonly errno: number;
  /** libbpf's log lines (warnings) printed during the call, if any were captured. */
  readonly log: string;

  /**
   * Builds the error; the message ends with the errno text and number.
   *
   * @param op the C function that failed
   * @param errno the positive error code
   * @param what what could not be done, e.g. `Cannot load BPF object "trap.bpf.o"`
   * @param options `log`: libbpf's messages; `cause`: the underlying error
   */
  constructor(
    op: string,
    errno: number,
    what: string,
    options: { log?: string; cause?: unknown } = {},
  ) {
    super(`${what}: ${strerror(errno)} (errno ${errno})`, { cause: options.cause });
    this.name = "BpfError";
    this.op = op;
    this.errno = errno;
    this.log = options.log ?? "";
  }
}

/**
 * The message of an errno or libbpf error code, as libbpf_strerror() gives it.
 *
 * @param errno a positive error code
 * @returns e.g. "Operation not permitted"
 */
export function strerror(errno: number): string {
  const buf = new Uint8Array(128);
  try {
    libbpf().libbpf_strerror(errno, buf, BigInt(buf.length));
  } catch {
    return `error ${errno}`;
  }
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
}
