import { cString, errno, libbpf, libbpfPath as path, libc, readCString } from "./_ffi.ts";
import { BpfError } from "./bpf_error.ts";

const CLOCK_REALTIME = 0;
const CLOCK_BOOTTIME = 7;
const O_RDONLY = 0;
const O_NONBLOCK = 0o4000;
const O_NOCTTY = 0o400;
const O_CLOEXEC = 0o2000000;

/** The path libbpf was loaded from (loads it if needed). */
export function libbpfPath(): string {
  return path();
}

/** libbpf's version, e.g. "v1.1". */
export function libbpfVersion(): string {
  return readCString(libbpf().libbpf_version_string());
}

function clock(id: number): bigint {
  const ts = new BigInt64Array(2);
  const rc = libc().clock_gettime(id, new Uint8Array(ts.buffer));
  if (rc !== 0) throw new BpfError("clock_gettime", errno(), `Cannot read clock ${id}`);
  return ts[0] * 1_000_000_000n + ts[1];
}

/**
 * CLOCK_REALTIME and CLOCK_BOOTTIME (what bpf_ktime_get_boot_ns() reads), read back to
 * back, in nanoseconds: `realtime - boottime` converts kernel timestamps to wall clock.
 */
export function monotonicClocks(): { realtimeNs: bigint; boottimeNs: bigint } {
  const boottimeNs = clock(CLOCK_BOOTTIME);
  const realtimeNs = clock(CLOCK_REALTIME);
  return { realtimeNs, boottimeNs };
}

/** The calling thread's id (gettid()), as BPF's bpf_get_current_pid_tgid() sees it. */
export function threadId(): number {
  return libc().gettid();
}

/**
 * Opens `file` read-only and non-blocking on the calling thread, then closes it: a
 * real open that hooks see, without reading and without hanging on FIFOs.
 *
 * @throws {BpfError} op `open` with the errno
 */
export function openAndClose(file: string): void {
  const fd = libc().open(cString(file), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) throw new BpfError("open", errno(), `Cannot open "${file}"`);
  libc().close(fd);
}
