/**
 * libc through FFI, for the whole agent: one symbol table, one dlopen per isolate (the main
 * thread and each Worker open their own), and the helpers every caller needs (errno,
 * strerror, C strings).
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
  // int futimens(int fd, const struct timespec times[2]);
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
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
  // int vsnprintf(char *str, size_t size, const char *format, va_list ap);
  vsnprintf: { parameters: ["buffer", "usize", "pointer", "pointer"], result: "i32" },
  // int clock_gettime(clockid_t clockid, struct timespec *tp);
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  // pid_t gettid(void);
  gettid: { parameters: [], result: "i32" },
  // int open(const char *pathname, int flags, ...);  (called without a mode)
  open: { parameters: ["buffer", "i32"], result: "i32" },
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
 * Opens the first candidate that dlopen accepts.
 *
 * @param candidates Paths or sonames, in order.
 * @param symbols The symbol table.
 * @param what The library's name for the error.
 * @returns The path that opened and the library.
 * @throws {Error} when none opens; the message and the cause list every attempt
 */
export function dlopenFirst<S extends Deno.ForeignLibraryInterface>(
  candidates: readonly string[],
  symbols: S,
  what: string,
): { path: string; lib: Deno.DynamicLibrary<S> } {
  const errors: string[] = [];
  for (const path of candidates) {
    try {
      return { path, lib: Deno.dlopen(path, symbols) };
    } catch (error) {
      errors.push(`${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new Error(`Cannot open ${what}: tried ${errors.join("; ")}`, {
    cause: new AggregateError(errors),
  });
}

/**
 * Opens libc once per isolate: env KIVEBPF_LIBC, then the soname, then distro paths.
 *
 * @throws {Error} when no candidate can be opened (the message lists every attempt)
 */
export function libc(): Libc {
  if (cache.libc) return cache.libc;
  const env = Deno.env.get("KIVEBPF_LIBC");
  cache.libc = dlopenFirst(env ? [env] : LIBC_CANDIDATES, LIBC_SYMBOLS, "libc").lib.symbols;
  return cache.libc;
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

/** Reads a C string, or returns "" for NULL. */
export function readCString(p: Deno.PointerValue): string {
  return p === null ? "" : Deno.UnsafePointerView.getCString(p);
}
