/**
 * Watches planted trap files with inotify, so that a container that removes, replaces, renames
 * or chmods a trap (or swaps a directory on its path) is noticed within a poll interval instead
 * of at the next periodic verification.
 *
 * Safety: a watch is never placed by resolving a container path again. It is placed through
 * `/proc/self/fd/<fd>` of the fds that {@linkcode ensureTrapFile} opened with `openat2` inside
 * the container's root, so the kernel jumps to exactly the inode that was verified; a symlink
 * the container swaps in afterwards is never followed. Ancestor directories are opened the same
 * way (`RESOLVE_IN_ROOT`, no magic links) from the container's root fd.
 *
 * What is watched, per trap:
 * - the trap file's inode: chmod/chown/link count (`IN_ATTRIB`), a rename anywhere
 *   (`IN_MOVE_SELF`: the old inode is still the bait) and its last link going (`IN_DELETE_SELF`);
 * - every directory from the container's root to the trap's directory, for its next name on the
 *   path being created, deleted, renamed or chmod-ed, and for the directory itself going.
 *
 * Watches only produce signals; what changed is decided by verifying the path again. Watches do
 * not pin mounts (an unmount clears them), so a container's teardown is never held up.
 *
 * @module
 */
import { cString, E, errno, libc, O, strerror } from "./_libc.ts";
import { openat2, RESOLVE_ROOT } from "./_fs.ts";
import type { PlantedHandles } from "./trap_file.ts";

/** What a watch saw for one trap; the planter verifies the trap again on any of them. */
export type TrapFileSignal =
  /** Something changed on the trap's path (a name created, deleted, renamed; a directory gone). */
  | { key: string; kind: "path" }
  /** The trap inode's mode, owner, times or link count changed. */
  | { key: string; kind: "attrib"; ino: string }
  /** The trap inode was renamed: it still exists somewhere in the container. */
  | { key: string; kind: "moved"; ino: string }
  /** The trap inode's last link is gone. */
  | { key: string; kind: "deleted"; ino: string };

/** Options of {@linkcode TrapFileWatcher}. */
export interface TrapFileWatcherOptions {
  /** Receives each poll's signals (at most one call per poll, never empty). */
  onSignals: (signals: TrapFileSignal[]) => void;
  /** How often the inotify queue is read. Default 250 ms. */
  pollMs?: number;
}

// <sys/inotify.h>
const IN_ATTRIB = 0x4;
const IN_MOVED_FROM = 0x40;
const IN_MOVED_TO = 0x80;
const IN_CREATE = 0x100;
const IN_DELETE = 0x200;
const IN_DELETE_SELF = 0x400;
const IN_MOVE_SELF = 0x800;
const IN_Q_OVERFLOW = 0x4000;
const IN_IGNORED = 0x8000;
const IN_ONLYDIR = 0x01000000;
const IN_EXCL_UNLINK = 0x04000000;
const NAME_EVENTS = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB;
const DIR_MASK = NAME_EVENTS | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;
const FILE_MASK = IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
/** Bytes read per call; a poll reads at most this many times, an overflow covers the rest. */
const READ_BYTES = 64 * 1024;
const MAX_READS_PER_POLL = 16;

type Watch =
  /** A directory on the path: each key waits for one child name. */
  | { kind: "dir"; keys: Map<string, Set<string>> }
  /** A trap inode: each key that armed it, and the inode number it had. */
  | { kind: "file"; ino: string; keys: Set<string> };

/** One inotify instance for all trap files of an agent. */
export class TrapFileWatcher {
  readonly #options: TrapFileWatcherOptions;
  #fd = -1;
  #timer?: ReturnType<typeof setInterval>;
  readonly #watches = new Map<number, Watch>();
  /** Per key: its directory watches and its file watches. */
  readonly #byKey = new Map<string, { dirs: Set<number>; files: Set<number> }>();
  #overflows = 0;

  /**
   * Opens the inotify instance and starts polling it.
   *
   * @param options Where signals go and how often to poll.
   * @throws {Error} when inotify cannot be used (the message says why)
   */
  constructor(options: TrapFileWatcherOptions) {
    this.#options = options;
    const fd = libc().inotify_init1(O.O_NONBLOCK | O.O_CLOEXEC);
    if (fd < 0) {
      const code = errno();
      throw new Error(`Cannot watch trap files: inotify_init1: ${strerror(code)} (errno ${code})`);
    }
    this.#fd = fd;
    this.#timer = setInterval(() => this.poll(), options.pollMs ?? 250);
    Deno.unrefTimer(this.#timer);
  }

  /** Inotify watches in use. */
  get size(): number {
    return this.#watches.size;
  }

  /** Times the kernel's queue overflowed (every key was signalled instead). */
  get overflows(): number {
    return this.#overflows;
  }

  /**
   * Watches a trap that {@linkcode ensureTrapFile} just planted; call it from `onPlanted`.
   * The key's directory watches are replaced; its earlier file watches stay (a renamed trap
   * inode is still watched until {@linkcode TrapFileWatcher.keep} drops it).
   *
   * @param key The planter's key of the trap in this container.
   * @param handles The planted trap's fds.
   * @param ino The trap inode's number.
   * @returns Undefined, or why (part of) the trap could not be watched.
   */
  watch(key: string, handles: PlantedHandles, ino: string): string | undefined {
    if (this.#fd < 0) return "the watcher is closed";
    // Events queued so far belong to the subscriptions they happened under, not to this one.
    this.poll();
    const mine = this.#byKey.get(key) ?? { dirs: new Set<number>(), files: new Set<number>() };
    this.#byKey.set(key, mine);
    const dirs = new Set<number>();
    let problem: string | undefined;
    for (let depth = 0; depth <= handles.dirs.length; depth++) {
      const child = depth < handles.dirs.length ? handles.dirs[depth] : handles.name;
      const wd = this.#addDir(handles, depth, key, child);
      if (typeof wd === "string") problem ??= wd;
      else dirs.add(wd);
    }
    for (const wd of mine.dirs) if (!dirs.has(wd)) this.#unsubscribe(wd, key);
    mine.dirs = dirs;
    const wd = this.#add(`/proc/self/fd/${handles.file}`, FILE_MASK);
    if (typeof wd === "string") return problem ?? wd;
    const existing = this.#watches.get(wd);
    if (existing?.kind === "file" && existing.ino === ino) existing.keys.add(key);
    else this.#watches.set(wd, { kind: "file", ino, keys: new Set([key]) });
    mine.files.add(wd);
    return problem;
  }

  /**
   * Keeps only these keys, and of each only the inodes listed: every other watch is removed.
   *
   * @param live The trap inodes still armed, by key.
   */
  keep(live: ReadonlyMap<string, ReadonlySet<string>>): void {
    for (const [key, mine] of this.#byKey) {
      const inodes = live.get(key);
      if (!inodes) {
        for (const wd of [...mine.dirs, ...mine.files]) this.#unsubscribe(wd, key);
        this.#byKey.delete(key);
        continue;
      }
      for (const wd of mine.files) {
        const watch = this.#watches.get(wd);
        if (watch?.kind !== "file" || !inodes.has(watch.ino)) {
          this.#unsubscribe(wd, key);
          mine.files.delete(wd);
        }
      }
    }
  }

  /** Whether inode `ino` of this key is still watched (so its deletion would be seen). */
  watches(key: string, ino: string): boolean {
    for (const wd of this.#byKey.get(key)?.files ?? []) {
      const watch = this.#watches.get(wd);
      if (watch?.kind === "file" && watch.ino === ino) return true;
    }
    return false;
  }

  /** Reads what the kernel queued and hands the signals over. Called by the poll timer. */
  poll(): void {
    if (this.#fd < 0) return;
    const signals: TrapFileSignal[] = [];
    const buffer = new Uint8Array(READ_BYTES);
    for (let reads = 0; reads < MAX_READS_PER_POLL; reads++) {
      const n = Number(libc().read(this.#fd, buffer, BigInt(buffer.length)));
      if (n <= 0) break; // EAGAIN: the queue is empty
      this.#parse(buffer.subarray(0, n), signals);
      if (reads === MAX_READS_PER_POLL - 1) this.#overflowed(signals);
    }
    if (signals.length > 0) this.#options.onSignals(signals);
  }

  /** Removes every watch and closes the instance. */
  close(): void {
    clearInterval(this.#timer);
    if (this.#fd >= 0) libc().close(this.#fd);
    this.#fd = -1;
    this.#watches.clear();
    this.#byKey.clear();
  }

  #addDir(handles: PlantedHandles, depth: number, key: string, child: string): number | string {
    let fd = handles.parent;
    if (depth < handles.dirs.length) {
      const prefix = depth === 0 ? "." : handles.dirs.slice(0, depth).join("/");
      fd = openat2(handles.root, prefix, O.O_PATH | O.O_DIRECTORY, RESOLVE_ROOT);
      if (fd < 0) return `Cannot open "/${handles.dirs.slice(0, depth).join("/")}": errno ${-fd}`;
    }
    try {
      const wd = this.#add(`/proc/self/fd/${fd}`, DIR_MASK);
      if (typeof wd === "string") return wd;
      let watch = this.#watches.get(wd);
      if (watch?.kind !== "dir") {
        watch = { kind: "dir", keys: new Map() };
        this.#watches.set(wd, watch);
      }
      const names = watch.keys.get(key) ?? new Set<string>();
      names.add(child);
      watch.keys.set(key, names);
      return wd;
    } finally {
      if (fd !== handles.parent) libc().close(fd);
    }
  }

  #add(path: string, mask: number): number | string {
    const wd = libc().inotify_add_watch(this.#fd, cString(path), mask);
    if (wd >= 0) return wd;
    const code = errno();
    const hint = code === E.ENOSPC ? " (raise fs.inotify.max_user_watches)" : "";
    return `Cannot watch a trap: inotify_add_watch: ${strerror(code)} (errno ${code})${hint}`;
  }

  #unsubscribe(wd: number, key: string): void {
    const watch = this.#watches.get(wd);
    if (!watch) return;
    watch.keys.delete(key);
    if (watch.keys.size > 0) return;
    this.#watches.delete(wd);
    libc().inotify_rm_watch(this.#fd, wd);
  }

  #parse(bytes: Uint8Array, signals: TrapFileSignal[]): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const decoder = new TextDecoder();
    // struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; char name[]; }
    for (let offset = 0; offset + 16 <= bytes.length;) {
      const wd = view.getInt32(offset, true);
      const mask = view.getUint32(offset + 4, true);
      const length = view.getUint32(offset + 12, true);
      const raw = bytes.subarray(offset + 16, offset + 16 + length);
      const end = raw.indexOf(0);
      const name = decoder.decode(end >= 0 ? raw.subarray(0, end) : raw);
      offset += 16 + length;
      if (mask & IN_Q_OVERFLOW) {
        this.#overflowed(signals);
        continue;
      }
      this.#route(wd, mask, name, signals);
    }
  }

  #route(wd: number, mask: number, name: string, signals: TrapFileSignal[]): void {
    const watch = this.#watches.get(wd);
    if (!watch) return;
    if (watch.kind === "dir") {
      const self = (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) !== 0;
      for (const [key, names] of watch.keys) {
        if (self || ((mask & NAME_EVENTS) && names.has(name))) signals.push({ key, kind: "path" });
      }
    } else {
      for (const key of watch.keys) {
        if (mask & IN_DELETE_SELF) signals.push({ key, kind: "deleted", ino: watch.ino });
        else if (mask & IN_MOVE_SELF) signals.push({ key, kind: "moved", ino: watch.ino });
        else if (mask & IN_ATTRIB) signals.push({ key, kind: "attrib", ino: watch.ino });
        else if (mask & IN_IGNORED) signals.push({ key, kind: "path" });
      }
    }
    if (mask & IN_IGNORED) this.#forgetWatch(wd);
  }

  /** The kernel removed a watch (its inode went, or its file system was unmounted). */
  #forgetWatch(wd: number): void {
    const watch = this.#watches.get(wd);
    this.#watches.delete(wd);
    for (const key of watch?.keys.keys() ?? []) {
      this.#byKey.get(key)?.dirs.delete(wd);
      this.#byKey.get(key)?.files.delete(wd);
    }
  }

  #overflowed(signals: TrapFileSignal[]): void {
    this.#overflows++;
    for (const key of this.#byKey.keys()) signals.push({ key, kind: "path" });
  }
}
