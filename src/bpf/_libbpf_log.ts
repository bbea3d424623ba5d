/**
 * libbpf's messages, collected instead of printed, so that they end up in the error or the
 * object's log. Private to src/bpf/.
 *
 * @module
 */
import { libbpf, libc } from "./_ffi.ts";

const LIBBPF_INFO = 1;

/**
 * Runs `fn` while libbpf's messages (warnings and info, not debug) are collected
 * instead of printed. The callback is synchronous: only use around calls made on
 * this thread.
 */
export function captureLog<T>(lines: string[], fn: () => T): T {
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
