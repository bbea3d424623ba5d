/**
 * Plants and inspects a trap file inside a container, as root, through the root of the
 * container's init process (`/proc/<pid>/root`), without ever following a symlink out of the
 * container.
 *
 * Every path is resolved with `openat2(2)` and `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` against
 * a directory fd of the container's root, so `..` stops at the container's `/`, absolute symlinks
 * are resolved relative to it, and `/proc/<pid>/root`-style magic links are refused.
 *
 * Decisions:
 *
 * - The FINAL component may not be a symlink (`PathIsSymlink`): the trap is the file at that name,
 *   and a name that points elsewhere is how a hostile container would try to make the agent
 *   create, chmod or arm a file it did not mean.
 * - Symlinks in the PARENT directories are followed, but only inside the container's root:
 *   ordinary images have them (`/var/run -> /run`, `/lib -> usr/lib`), and `RESOLVE_IN_ROOT`
 *   resolves them as the container itself would, so they cannot reach a host file.
 * - Mount points are crossed (no `RESOLVE_NO_XDEV`): a container's bind mounts and volumes
 *   (`/etc/hosts`, `/var/run/secrets/...`, `emptyDir`s) are part of the container's own view, and
 *   a trap there is legitimate. A hostPath volume is the policy author's explicit choice.
 * - An existing file is never truncated, written, chmod-ed or chown-ed: it is only opened with
 *   `O_PATH` (no data access, no atime update) to read its identity.
 * - The agent never deletes a trap file: a created file stays when the trap or the policy goes.
 *   The one exception is a file this very call created and could not finish (content, owner or
 *   mode failed): it is unlinked again so that no half-made file is later taken as "existing".
 * - Owner ids are ids INSIDE the container. When the container has a user namespace, they are
 *   mapped through `/proc/<pid>/uid_map` and `gid_map` to host ids before `fchown`, and files and
 *   directories created without an owner are given the container's root (its id 0). Idmapped
 *   mounts add another translation that is not applied here.
 *
 * @module
 */
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  cString,
  E,
  errno,
  libc,
  O,
  S,
} from "./_libc.ts";
import {
  classify,
  fail,
  FdSet,
  isFailure,
  openat2,
  openPlain,
  RESOLVE_ONE,
  statxAt,
  type TrapFileProblem,
} from "./_fs.ts";
import { idMapping } from "./_id_map.ts";
import { openParent } from "./_parents.ts";

import { kernelDev, makedev } from "../common/dev.ts";

export type { TrapFileProblem, TrapFileReason } from "./_fs.ts";

/** The identity of a trap file, as `statx(2)` reports it on the opened fd. */
export interface TrapFileIdentity {
  /** `st_dev` in glibc's encoding (`makedev(major, minor)`), as stat(1) `%d` prints it. */
  dev: bigint;
  /** Device major number. */
  major: number;
  /** Device minor number. */
  minor: number;
  /** Device in the kernel's encoding, `major << 20 | minor` (what BPF reads in `s_dev`). */
  kernelDev: number;
  /** Inode number. */
  ino: bigint;
  /** Permission bits (`0o7777` part of `st_mode`). */
  mode: number;
  /** Owner as the host sees it. */
  uid: number;
  /** Group as the host sees it. */
  gid: number;
  /** Size in bytes. */
  size: number;
  /** Hard links to the inode (a trap someone linked elsewhere has more than one). */
  nlink: number;
  /** Birth time (ns since the epoch, decimal) where the file system keeps one. */
  btime?: string;
  /** Nanoseconds part of the modification time: where {@linkcode EnsureTrapFileOptions.mark} goes. */
  mtimeNsec: number;
  /** Whether this call created the file. */
  created: boolean;
}

/** The outcome of {@linkcode ensureTrapFile}. */
export type TrapFileResult =
  | { ok: true; file: TrapFileIdentity }
  | { ok: false; problem: TrapFileProblem };

/** Options of {@linkcode ensureTrapFile}. */
export interface EnsureTrapFileOptions {
  /** Create the file (and missing parent directories, mode 0755) when it is missing. Default false. */
  create?: boolean;
  /** Exact permission bits of a created file, regardless of umask. Default `0o444`. */
  mode?: number;
  /**
   * Content written once into a created file, or made from the new file's identity once it
   * exists (a decoy embeds an id derived from it). A maker that throws leaves no file behind.
   */
  content?: string | Uint8Array | ((file: NewFile) => string | Uint8Array);
  /**
   * Nanoseconds (0 to 999,999,999) to set as a created file's mtime fraction, after its content:
   * a mark that later tells the file this call created from one that was there before.
   */
  mark?: (file: NewFile) => number;
  /** Owner of a created file, as ids inside the container. Default: the container's root. */
  owner?: { uid: number; gid: number };
  /** Where the host's procfs is mounted. Default `/proc`. */
  procRoot?: string;
  /**
   * The mount namespace inode the process is expected to have. When given, a pid that now
   * belongs to another process is reported as `ContainerGone` instead of being used.
   */
  mntNs?: number;
  /**
   * Called once the file is planted, before its fds are closed, with the fds of the container's
   * root, of the trap's directory and of the trap file itself (`O_PATH`), and the file's identity:
   * what a watch on the
   * trap is placed through, without resolving a container path again.
   */
  onPlanted?: (handles: PlantedHandles, file: TrapFileIdentity) => void;
}

/** The identity of a file just created, before anything is written into it. */
export interface NewFile {
  /** Device in the kernel's encoding, `major << 20 | minor`. */
  kernelDev: number;
  ino: bigint;
  /** Birth time (ns, decimal), where the file system keeps one. */
  btime?: string;
}

/** Open fds of a trap that was just planted; valid only during {@linkcode EnsureTrapFileOptions.onPlanted}. */
export interface PlantedHandles {
  /** The container's root directory (`O_PATH`). */
  root: number;
  /** The trap's directory (`O_PATH`), as resolved inside the root. */
  parent: number;
  /** The trap file (`O_PATH`, or the write fd of a file this call created). */
  file: number;
  /** The directory names from the root to the trap's directory. */
  dirs: readonly string[];
  /** The trap file's own name. */
  name: string;
}

/**
 * Makes sure a trap file exists inside a container and returns its identity.
 *
 * The path is resolved inside the root of process `pid` (the container's init) and never leaves
 * it. With `create`, a missing file is created with exactly `mode` and its missing parent
 * directories with 0755; an existing file is left exactly as it is. Every fd opened is closed
 * before returning.
 *
 * The calls are synchronous system calls on local file systems (no data is read).
 *
 * @example
 * ```ts
 * const result = ensureTrapFile(4242, "/secret.txt", { create: true, mode: 0o444 });
 * if (result.ok) console.log(result.file.kernelDev, result.file.ino);
 * else console.log(result.problem.reason); // e.g. "PathIsSymlink"
 * ```
 *
 * @param pid A process of the container (its init), as the host sees it.
 * @param path Absolute path of the trap inside the container, e.g. `/secret.txt`.
 * @param options What to do when the file is missing; where procfs is.
 * @returns The file's identity, or the problem that prevented it.
 * @throws {TypeError} when `path` is not absolute, has a `..` component or a NUL byte
 * @throws {RangeError} when `pid`, `mode` or an owner id is out of range
 */
export function ensureTrapFile(
  pid: number,
  path: string,
  options: EnsureTrapFileOptions = {},
): TrapFileResult {
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    throw new RangeError(`Cannot use pid ${pid}: not a positive integer`);
  }
  const names = splitTrapPath(path);
  const mode = options.mode ?? 0o444;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new RangeError(`Cannot use mode ${mode} for "${path}": permission bits are 0 to 0o7777`);
  }
  for (const [what, id] of Object.entries(options.owner ?? {})) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) {
      throw new RangeError(`Cannot use owner ${what} ${id} for "${path}": ids are 0 to 4294967294`);
    }
  }
  const fds = new FdSet();
  try {
    const handles: Partial<PlantedHandles> = { dirs: names.slice(0, -1), name: names.at(-1) };
    const result = plant(fds, pid, path, names, { ...options, mode }, handles);
    if (result.ok && options.onPlanted) options.onPlanted(handles as PlantedHandles, result.file);
    return result;
  } finally {
    fds.close();
  }
}

/**
 * Splits an absolute trap path into its components.
 *
 * @param path e.g. `/a//b/./c`
 * @returns e.g. `["a", "b", "c"]`
 * @throws {TypeError} for a relative path, `..`, a NUL byte or a path without a file name
 */
export function splitTrapPath(path: string): string[] {
  if (!path.startsWith("/")) throw new TypeError(`Trap path "${path}" is not absolute`);
  if (path.includes("\0")) throw new TypeError(`Trap path ${JSON.stringify(path)} has a NUL byte`);
  const names = path.split("/").filter((name) => name !== "" && name !== ".");
  if (names.includes("..")) throw new TypeError(`Trap path "${path}" has a ".." component`);
  if (names.length === 0) throw new TypeError(`Trap path "${path}" names no file`);
  return names;
}

function plant(
  fds: FdSet,
  pid: number,
  path: string,
  names: string[],
  options: EnsureTrapFileOptions & { mode: number },
  handles: Partial<PlantedHandles>,
): TrapFileResult {
  const procRoot = options.procRoot ?? "/proc";
  const where = `"${path}" in the root of pid ${pid}`;

  // A /proc/<pid> fd keeps naming the same process: if it exits and the pid is reused, lookups
  // through this fd fail with ENOENT/ESRCH instead of reaching the new process.
  const proc = openPlain(AT_FDCWD, `${procRoot}/${pid}`, O.O_PATH | O.O_DIRECTORY);
  if (proc < 0) return gone(pid, -proc, `Cannot open ${procRoot}/${pid}`);
  fds.add(proc);
  if (options.mntNs !== undefined) {
    const ns = statxAt(proc, "ns/mnt", 0);
    if (isFailure(ns)) {
      return gone(pid, ns.problem.errno ?? 0, `Cannot stat ${procRoot}/${pid}/ns/mnt`);
    }
    if (ns.ino !== BigInt(options.mntNs)) {
      return {
        ok: false,
        problem: {
          reason: "ContainerGone",
          message: `Pid ${pid} is in mount namespace ${ns.ino}, not ${options.mntNs}: ` +
            `the container's process has exited`,
        },
      };
    }
  }
  const root = openPlain(proc, "root", O.O_PATH | O.O_DIRECTORY);
  if (root < 0) return gone(pid, -root, `Cannot open ${procRoot}/${pid}/root`);
  fds.add(root);
  handles.root = root;

  const ids = options.create ? idMapping(proc, options.owner) : undefined;
  if (isFailure(ids)) return { ok: false, problem: ids.problem };

  const parent = openParent(fds, root, names.slice(0, -1), options.create === true, where, ids);
  if (isFailure(parent)) return { ok: false, problem: parent.problem };
  const name = names[names.length - 1];
  handles.parent = parent;

  // Two rounds: a file created by someone else between our lookup and our O_EXCL create is
  // then inspected as an existing file.
  for (let round = 0; round < 2; round++) {
    const fd = openat2(parent, name, O.O_PATH | O.O_NOFOLLOW, RESOLVE_ONE);
    if (fd >= 0) {
      handles.file = fds.add(fd);
      return identify(fd, where, false);
    }
    const code = -fd;
    if (code === E.ELOOP) return symlink(where);
    if (code !== E.ENOENT) return { ok: false, problem: classify(code, `Cannot open ${where}`) };
    if (!options.create) {
      return { ok: false, ...fail("FileMissing", `Trap file ${where} does not exist`) };
    }
    const created = openat2(
      parent,
      name,
      O.O_WRONLY | O.O_CREAT | O.O_EXCL | O.O_NOFOLLOW,
      RESOLVE_ONE,
      0, // no access for anyone until fchmod sets the exact mode
    );
    if (created >= 0) {
      handles.file = fds.add(created);
      return finishCreated(parent, name, created, where, options, ids?.file);
    }
    if (-created !== E.EEXIST) {
      return { ok: false, problem: classify(-created, `Cannot create ${where}`) };
    }
  }
  return { ok: false, ...fail("Other", `Trap file ${where} keeps appearing and disappearing`) };
}

/** `UTIME_OMIT` of utimensat(2): leave this timestamp as it is. */
const UTIME_OMIT = (1n << 30n) - 2n;

function gone(pid: number, code: number, what: string): TrapFileResult {
  if (code === E.ENOENT || code === E.ESRCH) {
    return { ok: false, ...fail("ContainerGone", `${what}: process ${pid} has exited`, code) };
  }
  return { ok: false, problem: classify(code, what) };
}

function symlink(where: string): TrapFileResult {
  return {
    ok: false,
    ...fail("PathIsSymlink", `Trap file ${where} is a symlink; the agent does not follow it`),
  };
}

/** Writes content, sets owner then mode (chown clears setuid bits), and reads the identity. */
function finishCreated(
  parent: number,
  name: string,
  fd: number,
  where: string,
  options: EnsureTrapFileOptions & { mode: number },
  owner: { uid: number; gid: number } | undefined,
): TrapFileResult {
  const lib = libc();
  let problem: TrapFileProblem | undefined;
  let made: string | Uint8Array | undefined;
  let fresh: NewFile | undefined;
  if (typeof options.content === "function" || options.mark) {
    const st = statxAt(fd, "", AT_EMPTY_PATH);
    if (isFailure(st)) problem = st.problem;
    else fresh = { kernelDev: kernelDev(st.major, st.minor), ino: st.ino, btime: st.btime };
  }
  try {
    made = typeof options.content === "function"
      ? (fresh ? options.content(fresh) : undefined)
      : options.content;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    problem ??= fail("ContentUnavailable", `Cannot make the content of ${where}: ${why}`).problem;
  }
  const content = typeof made === "string" ? new TextEncoder().encode(made) : made;
  for (let offset = 0; content && offset < content.length && !problem;) {
    const n = Number(lib.write(fd, content.subarray(offset), BigInt(content.length - offset)));
    if (n >= 0) offset += n;
    else if (errno() !== E.EINTR) problem = classify(errno(), `Cannot write ${where}`);
  }
  if (!problem && owner && lib.fchown(fd, owner.uid, owner.gid) !== 0) {
    problem = classify(errno(), `Cannot chown ${where} to ${owner.uid}:${owner.gid}`);
  }
  if (!problem && lib.fchmod(fd, options.mode) !== 0) {
    problem = classify(errno(), `Cannot chmod ${where} to 0${options.mode.toString(8)}`);
  }
  if (!problem && options.mark && fresh) {
    const nsec = options.mark(fresh);
    // struct timespec[2]: atime left alone (UTIME_OMIT), mtime now with the mark as fraction.
    const times = new BigInt64Array([0n, UTIME_OMIT, BigInt(Math.floor(Date.now() / 1000)), 0n]);
    times[3] = BigInt(nsec);
    if (lib.futimens(fd, new Uint8Array(times.buffer)) !== 0) {
      problem = classify(errno(), `Cannot set the modification time of ${where}`);
    }
  }
  if (!problem) return identify(fd, where, true);
  // Undo only our own half-made file: the name must still be the inode we created.
  const mine = statxAt(fd, "", AT_EMPTY_PATH);
  const named = statxAt(parent, name, AT_SYMLINK_NOFOLLOW);
  if (
    !isFailure(mine) && !isFailure(named) && mine.ino === named.ino && mine.major === named.major &&
    mine.minor === named.minor
  ) {
    lib.unlinkat(parent, cString(name), 0);
  }
  return { ok: false, problem };
}

function identify(fd: number, where: string, created: boolean): TrapFileResult {
  const st = statxAt(fd, "", AT_EMPTY_PATH);
  if (isFailure(st)) return { ok: false, problem: st.problem };
  const type = st.mode & S.S_IFMT;
  if (type === S.S_IFLNK) return symlink(where);
  if (type !== S.S_IFREG) {
    const kind = type === S.S_IFDIR ? "a directory" : `of type 0${type.toString(8)}`;
    return { ok: false, ...fail("NotARegularFile", `Trap file ${where} is ${kind}`) };
  }
  return {
    ok: true,
    file: {
      dev: makedev(st.major, st.minor),
      major: st.major,
      minor: st.minor,
      kernelDev: kernelDev(st.major, st.minor),
      ino: st.ino,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: st.size,
      nlink: st.nlink,
      btime: st.btime,
      mtimeNsec: st.mtimeNsec,
      created,
    },
  };
}
