/**
 * The libc symbols the trap-file code calls, the Linux constants it needs, and small helpers
 * around them (C strings, errno).
 *
 * Private to src/containers/.
 *
 * @module
 */

/** libc symbols (glibc 2.36, Debian 12), C names verbatim. */
export const LIBC_SYMBOLS = {
  // long syscall(long number, ...);
  // Declared with fixed arguments for openat2(int dirfd, const char *path, struct open_how *how,
  // size_t size): glibc's syscall() is an assembly trampoline that moves its integer arguments
  // into the kernel's registers and never uses va_arg, so a fixed prototype is safe on x86_64
  // and aarch64.
  syscall: { parameters: ["i64", "i32", "buffer", "buffer", "usize"], result: "i64" },
  // int openat(int dirfd, const char *pathname, int flags, mode_t mode);
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  // int mkdirat(int dirfd, const char *pathname, mode_t mode);
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int unlinkat(int dirfd, const char *pathname, int flags);
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // int fchmod(int fd, mode_t mode);
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  // int fchown(int fd, uid_t owner, gid_t group);
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  // int statx(int dirfd, const char *pathname, int flags, unsigned int mask, struct statx *buf);
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int inotify_init1(int flags);
  inotify_init1: { parameters: ["i32"], result: "i32" },
  // int inotify_add_watch(int fd, const char *pathname, uint32_t mask);
  inotify_add_watch: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int inotify_rm_watch(int fd, int wd);
  inotify_rm_watch: { parameters: ["i32", "i32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // char *strerror(int errnum);  (only called on the JS thread, right after a failure)
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened libc. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

const LIBC_CANDIDATES = [
  "libc.so.6",
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/aarch64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
];

// One handle per isolate; dlopen keeps the library loaded for the life of the process anyway.
const cache: { libc?: Libc } = {};

/**
 * Opens libc once per isolate: env KIVEBPF_LIBC, then the soname, then distro paths.
 *
 * @throws {Error} when no candidate can be opened (the cause lists every attempt)
 */
export function libc(): Libc {
  if (cache.libc) return cache.libc;
  const env = Deno.env.get("KIVEBPF_LIBC");
  const candidates = env ? [env] : LIBC_CANDIDATES;
  const errors: Error[] = [];
  for (const path of candidates) {
    try {
      cache.libc = Deno.dlopen(path, LIBC_SYMBOLS).symbols;
      return cache.libc;
    } catch (error) {
      errors.push(error instanceof Error ? error : new Error(String(error)));
    }
  }
  throw new Error(
    `Cannot open libc: tried ${candidates.join(", ")}: ${errors.map((e) => e.message).join("; ")}`,
    { cause: new AggregateError(errors) },
  );
}

/** Reads errno; call it at once after the failing C call. */
export function errno(): number {
  const pointer = libc().__errno_location();
  return pointer === null ? 0 : new Deno.UnsafePointerView(pointer).getInt32();
}

/** The C library's message for an errno, e.g. "No such file or directory". */
export function strerror(code: number): string {
  const pointer = libc().strerror(code);
  return pointer === null ? `error ${code}` : Deno.UnsafePointerView.getCString(pointer);
}

const encoder = new TextEncoder();

/**
 * A NUL-terminated copy of `text` for a `const char *` parameter.
 *
 * @throws {TypeError} when `text` contains a NUL byte (C would silently cut the string there)
 */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  if (text.includes("\0")) throw new TypeError(`Path ${JSON.stringify(text)} contains a NUL byte`);
  const bytes = encoder.encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

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
/** `S_IFMT` and the file types we tell apart. */
export const S = { S_IFMT: 0o170000, S_IFREG: 0o100000, S_IFDIR: 0o040000, S_IFLNK: 0o120000 };
