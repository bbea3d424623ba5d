/**
 * The file-system calls of the trap-file code: openat2(2) with its retries, statx(2) and the
 * mapping of errnos to the reasons a trap file cannot be planted.
 *
 * Private to src/containers/.
 *
 * @module
 */
import {
  cString,
  E,
  errno,
  libc,
  O,
  RESOLVE,
  STATX_BASIC_STATS,
  STATX_BTIME,
  strerror,
  SYS_OPENAT2,
} from "./_libc.ts";

/** Why a trap file could not be planted or inspected. */
export type TrapFileReason =
  | "FileMissing"
  | "PathIsSymlink"
  | "PathEscapesRoot"
  | "NotARegularFile"
  | "ContainerGone"
  | "PermissionDenied"
  | "ContentUnavailable"
  | "Other";

/** A trap file that could not be planted or inspected, for the policy's status. */
export interface TrapFileProblem {
  /** Machine-readable reason. */
  reason: TrapFileReason;
  /** What could not be done and why, with the path. */
  message: string;
  /** The errno of the failed call, when one failed. */
  errno?: number;
}

/** A failed step, carrying the problem for the policy's status. */
export type Failure = { problem: TrapFileProblem };

export function fail(reason: TrapFileReason, message: string, code?: number): Failure {
  return {
    problem: code === undefined
      ? { reason, message }
      : { reason, message: `${message}: ${strerror(code)} (errno ${code})`, errno: code },
  };
}

export function isFailure(value: unknown): value is Failure {
  return typeof value === "object" && value !== null && "problem" in value;
}

/** One name relative to a directory fd: no symlink at all, cannot leave the directory. */
export const RESOLVE_ONE = RESOLVE.RESOLVE_BENEATH | RESOLVE.RESOLVE_NO_SYMLINKS;
/** A path relative to the container's root fd. */
export const RESOLVE_ROOT = RESOLVE.RESOLVE_IN_ROOT | RESOLVE.RESOLVE_NO_MAGICLINKS;

/** Maps an errno to the reason a trap file step failed. */
export function classify(code: number, what: string): TrapFileProblem {
  switch (code) {
    case E.ENOENT:
      return fail("FileMissing", what, code).problem;
    case E.EXDEV:
      return fail("PathEscapesRoot", `${what}: the path leaves the container's root`, code).problem;
    case E.EACCES:
    case E.EPERM:
      return fail("PermissionDenied", what, code).problem;
    case E.ENOSYS:
      return fail("Other", `${what}: openat2 needs Linux 5.6 or later`, code).problem;
    default:
      return fail("Other", what, code).problem;
  }
}

/** The fields of `struct statx` the agent reads. */
export interface Statx {
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  ino: bigint;
  size: number;
  major: number;
  minor: number;
  /**
   * Birth time in nanoseconds since the epoch, in decimal; absent where the file system keeps
   * none. With the inode number it tells a new file from the old one when the number is reused
   * at once (ext4 hands a freed inode number to the next file created in the directory).
   */
  btime?: string;
  /** Nanoseconds part of the modification time (a created decoy's mark, see src/decoys/). */
  mtimeNsec: number;
}

/** statx(2) of `path` relative to `dirfd` (`""` with AT_EMPTY_PATH: the fd itself). */
export function statxAt(dirfd: number, path: string, flags: number): Statx | Failure {
  const buf = new Uint8Array(256);
  if (libc().statx(dirfd, cString(path), flags, STATX_BASIC_STATS | STATX_BTIME, buf) !== 0) {
    return { problem: classify(errno(), `Cannot stat "${path}"`) };
  }
  // struct statx (include/uapi/linux/stat.h)
  const view = new DataView(buf.buffer);
  const hasBtime = (view.getUint32(0, true) & STATX_BTIME) !== 0; // stx_mask: what was filled
  const btime = hasBtime
    ? (view.getBigInt64(80, true) * 1_000_000_000n + BigInt(view.getUint32(88, true))).toString()
    : undefined;
  return {
    nlink: view.getUint32(16, true),
    uid: view.getUint32(20, true),
    gid: view.getUint32(24, true),
    mode: view.getUint16(28, true),
    ino: view.getBigUint64(32, true),
    size: Number(view.getBigUint64(40, true)),
    major: view.getUint32(136, true),
    minor: view.getUint32(140, true),
    mtimeNsec: view.getUint32(120, true), // stx_mtime.tv_nsec
    ...(btime === undefined ? {} : { btime }),
  };
}

/** openat(2) with O_CLOEXEC; returns the fd or `-errno`. */
export function openPlain(dirfd: number, path: string, flags: number): number {
  const fd = libc().openat(dirfd, cString(path), flags | O.O_CLOEXEC, 0);
  return fd >= 0 ? fd : -errno();
}

/**
 * openat2(2) with O_CLOEXEC; returns the fd or `-errno`. Retries EAGAIN, which the kernel
 * returns for RESOLVE_IN_ROOT/RESOLVE_BENEATH when a concurrent rename or mount could have
 * made `..` unsafe, and EINTR.
 */
export function openat2(
  dirfd: number,
  path: string,
  flags: number,
  resolve: number,
  mode = 0,
): number {
  // struct open_how { __u64 flags; __u64 mode; __u64 resolve; }
  const how = new Uint8Array(24);
  const view = new DataView(how.buffer);
  view.setBigUint64(0, BigInt(flags | O.O_CLOEXEC), true);
  view.setBigUint64(8, BigInt(mode), true);
  view.setBigUint64(16, BigInt(resolve), true);
  const name = cString(path);
  for (let attempt = 0;; attempt++) {
    const fd = Number(libc().syscall(SYS_OPENAT2, dirfd, name, how, BigInt(how.length)));
    if (fd >= 0) return fd;
    const code = errno();
    if ((code !== E.EAGAIN && code !== E.EINTR) || attempt >= 16) return -code;
  }
}

/** Closes every fd added to it, once. */
export class FdSet {
  #fds: number[] = [];

  /** Adds an fd; returns it. */
  add(fd: number): number {
    this.#fds.push(fd);
    return fd;
  }

  /** Closes every fd, newest first. */
  close(): void {
    const lib = libc();
    for (const fd of this.#fds.reverse()) lib.close(fd);
    this.#fds = [];
  }
}
