/**
 * The libc symbols the trap-file code calls, the Linux constants it needs, and small helpers
 * around them (C strings, errno).
 *
 * Private to src/containers/.
 *
 * @module
 */
export { cString, errno, libc, strerror } from "../common/libc.ts";

/** errno values (asm-generic, the same on x86_64 and aarch64). */
export const E = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  ENOSYS: 38,
  ELOOP: 40,
} as const;

// open(2) flags that differ between architectures (include/uapi/asm-generic/fcntl.h vs
// arch/arm64/include/uapi/asm/fcntl.h).
const ARCH_FLAGS = Deno.build.arch === "aarch64"
  ? { O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000 }
  : { O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000 };

/** open(2) flags. */
export const O = {
  O_RDONLY: 0,
  O_WRONLY: 1,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_NONBLOCK: 0o4000,
  O_CLOEXEC: 0o2000000,
  O_PATH: 0o10000000,
  ...ARCH_FLAGS,
} as const;

/** openat2(2) `resolve` flags (include/uapi/linux/openat2.h). */
export const RESOLVE = {
  RESOLVE_NO_XDEV: 0x01,
  RESOLVE_NO_MAGICLINKS: 0x02,
  RESOLVE_NO_SYMLINKS: 0x04,
  RESOLVE_BENEATH: 0x08,
  RESOLVE_IN_ROOT: 0x10,
} as const;

/** System call number of openat2; 437 on every architecture (new syscalls share numbers). */
export const SYS_OPENAT2 = 437n;
/** `AT_FDCWD` */
export const AT_FDCWD = -100;
/** `AT_EMPTY_PATH` */
export const AT_EMPTY_PATH = 0x1000;
/** `AT_SYMLINK_NOFOLLOW` */
export const AT_SYMLINK_NOFOLLOW = 0x100;
/** `STATX_BASIC_STATS` */
export const STATX_BASIC_STATS = 0x7ff;
/** `STATX_BTIME`: the birth time, where the file system keeps one. */
export const STATX_BTIME = 0x800;
/** `S_IFMT` and the file types we tell apart. */
export const S = { S_IFMT: 0o170000, S_IFREG: 0o100000, S_IFDIR: 0o040000, S_IFLNK: 0o120000 };
