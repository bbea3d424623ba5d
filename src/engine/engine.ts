import {
  BpfError,
  type BpfLink,
  type BpfMap,
  type BpfObject,
  openAndClose,
  threadId,
} from "../bpf/mod.ts";
import { EventQueue } from "./event_queue.ts";
import { positiveInt, readerLimits } from "./_limits.ts";
import { LossLedger } from "./loss_ledger.ts";
import { type Loaded, removePins, type TrapConfig, writeConfig } from "./load.ts";
import { TRAP_FLAG_BLOCK, TRAP_KEY_SIZE, TRAP_LEARNED_SIZE, TRAP_VALUE_SIZE } from "./_event.ts";
import type { StartMessage, WorkerMessage } from "./_ring_worker.ts";
import { toKernelDev } from "./dev.ts";
import type {
  Backend,
  BackendAttempt,
  EngineCounters,
  EngineEvent,
  LostNotice,
  TrapKey,
} from "./types.ts";

const STOP_TIMEOUT_MS = 5000;
/** Options of {@linkcode TrapEngine.arm}. */
export interface ArmOptions {
  /** Deny the open with EPERM (lsm backend only; still reported, with `blocked`). */
  block?: boolean;
}

/** Options of {@linkcode TrapEngine.armPath}. */
export interface ArmPathOptions extends ArmOptions {
  /**
   * Open the file once while the kernel records the (dev, ino) its hook sees, and arm
   * that key: right where stat's st_dev differs from the superblock's (overlayfs,
   * btrfs subvolumes). Default true; falls back to stat's key if nothing was recorded.
   */
  learn?: boolean;
}

function keyString(key: TrapKey): string {
  return `${key.dev}:${key.ino}`;
}

function encodeKey(key: TrapKey): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(TRAP_KEY_SIZE);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(key.dev), true);
  v.setBigUint64(8, key.ino, true);
  return out;
}

function checkKey(key: TrapKey): void {
  if (!Number.isInteger(key.dev) || key.dev < 0 || key.dev >= 2 ** 32) {
    throw new RangeError(`Trap key dev must be a kernel device number, got ${key.dev}`);
  }
  if (typeof key.ino !== "bigint" || key.ino < 0n || key.ino >= 1n << 64n) {
    throw new RangeError(`Trap key ino must be a 64-bit bigint, got ${String(key.ino)}`);
  }
}

function encodeCgroupId(id: bigint): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, id, true);
  return out;
}

/**
 * A loaded and attached trap engine. Create it with {@linkcode openEngine}.
 *
 * Every access to an armed (dev, ino) by another process yields one
 * {@linkcode AccessEvent} on {@linkcode TrapEngine.events}; accesses the kernel could
 * not send are counted per trap and reported as {@linkcode LostNotice}s.
 */
export class TrapEngine {
  #obj: BpfObject;
  #links: BpfLink[];
  #programs: readonly string[];
  #pins: Loaded["pins"];
  #pinError: string | undefined;
  #unpinned = false;
  #backend: Backend;
  #attempts: BackendAttempt[];
  #trapMap: BpfMap;
  #lostMap: BpfMap;
  #bss: BpfMap;
  #learnMap: BpfMap;
  #cgroupMap: BpfMap;
  #maxCgroups: number;
  #config: TrapConfig;
  #maxQueued: number;
  #queue: EventQueue;
  #cgroups: Set<bigint> | null = null;
  #armed = new Map<string, { key: TrapKey; trapId: number; flags: number }>();
  #ledger: LossLedger;
  #worker: Worker | null = null;
  /** Int32Array [0]: the stop request; [1]: the Worker's loop turns (its heartbeat). */
  #stop = new SharedArrayBuffer(8);
  #stopped: Promise<void> | null = null;
  #readerError: Error | null = null;
  #closing: Promise<void> | null = null;
  #closed = false;

  /** @internal use {@linkcode openEngine} */
  constructor(
    loaded: Loaded,
    backend: Backend,
    attempts: BackendAttempt[],
    limits: { maxTraps: number; maxCgroups: number; maxQueuedEvents: number; config: TrapConfig },
  ) {
    this.#obj = loaded.obj;
    this.#links = loaded.links;
    this.#programs = loaded.programs;
    this.#pins = loaded.pins;
    this.#pinError = loaded.pinError;
    this.#backend = backend;
    this.#attempts = attempts;
    this.#trapMap = loaded.obj.map("trap_map");
    this.#lostMap = loaded.obj.map("lost_counts");
    this.#bss = loaded.obj.map(".bss");
    this.#learnMap = loaded.obj.map("learn_map");
    this.#cgroupMap = loaded.obj.map("trapped_cgroups");
    this.#maxCgroups = limits.maxCgroups;
    this.#maxQueued = limits.maxQueuedEvents;
    this.#queue = new EventQueue(limits.maxQueuedEvents);
    this.#config = { ...limits.config };
    this.#ledger = new LossLedger(
      this.#lostMap,
      loaded.obj.map("lost_reported"),
      limits.maxTraps,
    );
    if (loaded.pins?.adoptedMaps) this.#adopt();
  }

  /**
   * Takes over the contents of adopted maps: the armed keys (with their trap ids and
   * slots), what of each slot's losses was reported, the cgroup filter; then writes this
   * process's own tgid into the live configuration, keeping its armed count and filter.
   */
  #adopt(): void {
    for (const k of this.#trapMap.keys()) {
      const value = this.#trapMap.lookup(k);
      if (!value) continue;
      const kv = new DataView(k.buffer);
      const v = new DataView(value.buffer);
      const key = { dev: Number(kv.getBigUint64(0, true)), ino: kv.getBigUint64(8, true) };
      const trapId = v.getUint32(0, true);
      this.#ledger.adoptKey(trapId, v.getUint32(8, true));
      this.#armed.set(keyString(key), { key, trapId, flags: v.getUint32(4, true) });
    }
    this.#ledger.finishAdoption();
    const bss = this.#bss.lookup(new Uint8Array(4));
    const filterOn = bss ? new DataView(bss.buffer).getUint32(16, true) !== 0 : false;
    if (filterOn) {
      this.#cgroups = new Set(
        this.#cgroupMap.keys().map((k) => new DataView(k.buffer).getBigUint64(0, true)),
      );
    }
    this.#config = {
      ...this.#config,
      armed: this.#armed.size,
      cgroupFilter: filterOn ? 1 : 0,
    };
    writeConfig(this.#bss, this.#config);
  }

  /** @internal starts the reader Worker; resolves once it reads the ring buffer. */
  startReader(pollMs: number, aggregateWindowMs: number, ringBufferBytes: number): Promise<void> {
    const worker = new Worker(new URL("./_ring_worker.ts", import.meta.url).href, {
      type: "module",
    });
    this.#worker = worker;
    let ready: (value: void) => void;
    let failed: (error: Error) => void;
    const started = new Promise<void>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    let stopped: () => void;
    this.#stopped = new Promise<void>((resolve) => stopped = resolve);
    worker.onmessage = (message: MessageEvent<WorkerMessage>) => {
      const m = message.data;
      switch (m.type) {
        case "ready":
          ready();
          break;
        case "events":
          this.#queue.takeBatch(m.events);
          break;
        case "lost":
          this.#pollLost();
          break;
        case "error": {
          const error = m.op && m.errno !== undefined
            ? new BpfError(m.op, m.errno, "The ring buffer reader failed")
            : new Error(`The ring buffer reader failed: ${m.message}`);
          this.#readerError = error;
          failed(error);
          this.#queue.notify();
          break;
        }
        case "stopped":
          stopped();
          break;
      }
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      const error = new Error(`The ring buffer reader crashed: ${event.message}`);
      this.#readerError = error;
      failed(error);
      stopped();
      this.#queue.notify();
    };
    const start: StartMessage = {
      type: "start",
      ringFd: this.#obj.map("events").fd,
      lostFd: this.#lostMap.fd,
      pollMs,
      aggregateWindowMs,
      stop: this.#stop,
      credit: this.#queue.credit,
      ...readerLimits(this.#maxQueued),
      ringBufferBytes,
    };
    worker.postMessage(start);
    return started;
  }

  /** The active backend. */
  get backend(): Backend {
    return this.#backend;
  }

  /** Backends tried before the active one, and why they failed (empty when forced or first). */
  get attempts(): readonly BackendAttempt[] {
    return this.#attempts;
  }

  /** The BPF programs attached, e.g. `["trap_sys_exit", "trap_io_uring_complete", ...]`. */
  get programs(): readonly string[] {
    return this.#programs;
  }

  /**
   * Where the programs and maps are pinned (they outlive this process), or undefined.
   * `adoptedMaps`: this engine took over a predecessor's traps and pending events.
   */
  get pins(): Readonly<NonNullable<Loaded["pins"]>> | undefined {
    return this.#unpinned ? undefined : this.#pins;
  }

  /** Why pinning was asked for and not done, or undefined. */
  get pinError(): string | undefined {
    return this.#pinError;
  }

  /**
   * Removes this engine's pins, so that close() detaches the programs and frees the maps:
   * nothing stays in the kernel (uninstall, or no trap left). Idempotent.
   *
   * @throws {Deno.errors.PermissionDenied} and other errors of removing the pin directory
   */
  unpin(): void {
    if (!this.#pins || this.#unpinned) return;
    removePins(this.#pins.root);
    this.#unpinned = true;
  }

  /**
   * Turns of the event reader's loop: it advances at least once per poll timeout while the
   * reader runs, so a value that stops moving means the reader is wedged (liveness reads it).
   */
  get readerBeats(): number {
    return Atomics.load(new Int32Array(this.#stop), 1);
  }

  /** Whether {@linkcode TrapEngine.close} has completed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The fds of the attached links (for diagnostics and leak tests). */
  get linkFds(): number[] {
    return this.#links.map((l) => l.fd);
  }

  /** The fd of the trap map (for diagnostics and leak tests). */
  get trapMapFd(): number {
    return this.#trapMap.fd;
  }

  #checkOpen(): void {
    if (this.#closing) throw new TypeError("The trap engine is closed");
  }

  #setArmed(n: number): void {
    if (this.#config.armed === n) return;
    this.#config.armed = n;
    writeConfig(this.#bss, this.#config);
  }

  /**
   * Arms a (dev, ino): every open (and exec) of that inode is reported with `trapId`.
   * Arming an armed key again replaces its trap id and options.
   *
   * @param key the inode in the kernel's encoding (see {@linkcode toKernelDev})
   * @param trapId an unsigned 32-bit id reported in events
   * @param options `block`: deny the open (lsm backend only)
   * @throws {RangeError} for a bad key or id, or `block` without the lsm backend
   * @throws {BpfError} op `bpf_map_update_elem`, e.g. E2BIG when the map is full
   */
  arm(key: TrapKey, trapId: number, options: ArmOptions = {}): void {
    this.#checkOpen();
    checkKey(key);
    positiveInt("trapId", trapId, 0, 2 ** 32 - 1);
    if (options.block && this.#backend !== "lsm") {
      throw new RangeError(
        `The block action needs the lsm backend; this engine uses "${this.#backend}"`,
      );
    }
    const id = keyString(key);
    const previous = this.#armed.get(id);
    const slot = this.#ledger.slotOf(trapId);
    const flags = options.block ? TRAP_FLAG_BLOCK : 0;
    const value = new Uint8Array(TRAP_VALUE_SIZE);
    const v = new DataView(value.buffer);
    v.setUint32(0, trapId, true);
    v.setUint32(4, flags, true);
    v.setUint32(8, slot, true);
    // The programs skip everything while armed is 0: raise it before the key is in the map.
    if (!previous) this.#setArmed(this.#armed.size + 1);
    try {
      this.#trapMap.update(encodeKey(key), value);
    } catch (error) {
      if (!previous) this.#setArmed(this.#armed.size);
      this.#pushLost(this.#ledger.removeKey(trapId, false)); // frees a slot no key uses
      throw error;
    }
    this.#armed.set(id, { key: { dev: key.dev, ino: key.ino }, trapId, flags });
    if (previous && previous.trapId === trapId) return;
    this.#ledger.addKey(trapId);
    if (previous) this.#pushLost(this.#ledger.removeKey(previous.trapId));
  }

  #pushLost(notice: LostNotice | null): void {
    if (notice) this.#queue.push(notice);
  }

  /**
   * Arms the file at `path`: its (dev, ino) as the kernel sees it (see
   * {@linkcode ArmPathOptions.learn}), else from stat with st_dev converted.
   *
   * @returns the armed key
   * @throws {Deno.errors.NotFound} when the file does not exist
   */
  armPath(path: string, trapId: number, options: ArmPathOptions = {}): TrapKey {
    this.#checkOpen();
    const info = Deno.statSync(path);
    if (info.ino === null) throw new TypeError(`stat("${path}") gave no inode number`);
    let key: TrapKey = { dev: toKernelDev(info.dev), ino: BigInt(info.ino) };
    if (options.learn ?? true) {
      try {
        key = this.learnKey(path) ?? key;
      } catch (error) {
        // Files that cannot be opened (sockets, ...) keep the key from stat.
        if (!(error instanceof BpfError && error.op === "open")) throw error;
      }
    }
    this.arm(key, trapId, options);
    return key;
  }

  /**
   * Opens `path` once (read-only, non-blocking) on this thread while the kernel hook
   * records the (dev, ino) it sees for this thread.
   *
   * @returns the key the hook saw, or null if it saw none
   */
  learnKey(path: string): TrapKey | null {
    this.#checkOpen();
    const zero = new Uint8Array(4);
    const before = this.#learnMap.lookup(zero);
    this.#config.learnTgid = Deno.pid;
    this.#config.learnPid = threadId();
    writeConfig(this.#bss, this.#config);
    try {
      openAndClose(path);
    } finally {
      this.#config.learnTgid = 0;
      this.#config.learnPid = 0;
      writeConfig(this.#bss, this.#config);
    }
    const after = this.#learnMap.lookup(zero);
    if (!before || !after || after.length !== TRAP_LEARNED_SIZE) return null;
    const b = new DataView(before.buffer);
    const a = new DataView(after.buffer);
    if (a.getBigUint64(16, true) === b.getBigUint64(16, true)) return null;
    return { dev: Number(a.getBigUint64(0, true)), ino: a.getBigUint64(8, true) };
  }

  /**
   * Disarms a key.
   *
   * @returns false when it was not armed
   */
  disarm(key: TrapKey): boolean {
    this.#checkOpen();
    checkKey(key);
    const id = keyString(key);
    const armed = this.#armed.get(id);
    const deleted = this.#trapMap.delete(encodeKey(key));
    if (!armed) return deleted;
    this.#armed.delete(id);
    this.#setArmed(this.#armed.size);
    this.#pushLost(this.#ledger.removeKey(armed.trapId));
    return true;
  }

  /**
   * Restricts the kernel's checks to the tasks of some cgroups, or lifts the
   * restriction. With a filter set, the programs return right after the
   * syscall-number check (tracepoint) or at once (file-open hooks, exec) for a task
   * whose cgroup v2 id (`bpf_get_current_cgroup_id()`, the id in
   * {@linkcode AccessEvent.cgroupId}, the inode number of its cgroup2 directory) is
   * not in `ids`: accesses by such tasks are neither reported nor counted. Only tasks
   * directly in one of the cgroups match, not those of child cgroups.
   *
   * Off by default: every task is checked. Turn it on only when every armed trap
   * lives in a container whose cgroup v2 id is known (a cgroup v1-only runtime gives
   * none), and keep the set up to date as containers come and go.
   *
   * @param ids the cgroup ids whose tasks are checked (an empty set checks none), or
   *   null to check every task
   * @throws {RangeError} for an id that is not an unsigned 64-bit bigint, or more ids
   *   than the `maxCgroups` option
   * @throws {BpfError} op `bpf_map_update_elem` / `bpf_map_delete_elem`
   *
   * @example
   * ```ts
   * engine.setCgroupFilter([BigInt(Deno.statSync("/sys/fs/cgroup/kubepods.slice/x").ino!)]);
   * engine.setCgroupFilter(null); // every process again
   * ```
   */
  setCgroupFilter(ids: Iterable<bigint> | null): void {
    this.#checkOpen();
    const current = this.#cgroups ?? new Set<bigint>();
    if (ids === null) {
      if (this.#config.cgroupFilter) {
        this.#config.cgroupFilter = 0;
        writeConfig(this.#bss, this.#config); // off first: no task is skipped meanwhile
      }
      for (const id of current) this.#cgroupMap.delete(encodeCgroupId(id));
      this.#cgroups = null;
      return;
    }
    const next = new Set<bigint>();
    for (const id of ids) {
      if (typeof id !== "bigint" || id < 0n || id >= 1n << 64n) {
        throw new RangeError(`A cgroup id must be a 64-bit bigint, got ${String(id)}`);
      }
      next.add(id);
    }
    if (next.size > this.#maxCgroups) {
      throw new RangeError(
        `Cannot filter on ${next.size} cgroups: the engine holds ${this.#maxCgroups} (maxCgroups)`,
      );
    }
    // Ids in both sets stay in the map throughout; remove first to make room.
    this.#cgroups = current;
    for (const id of [...current]) {
      if (next.has(id)) continue;
      this.#cgroupMap.delete(encodeCgroupId(id));
      current.delete(id);
    }
    const value = new Uint8Array([1]);
    for (const id of next) {
      if (current.has(id)) continue;
      this.#cgroupMap.update(encodeCgroupId(id), value);
      current.add(id);
    }
    if (!this.#config.cgroupFilter) {
      this.#config.cgroupFilter = 1;
      writeConfig(this.#bss, this.#config); // on last: the set is complete
    }
  }

  /** The cgroup ids of {@linkcode TrapEngine.setCgroupFilter}, or null when every task is checked. */
  cgroupFilter(): bigint[] | null {
    return this.#cgroups ? [...this.#cgroups] : null;
  }

  /** The armed keys and their trap ids. */
  armed(): { key: TrapKey; trapId: number; block: boolean }[] {
    return [...this.#armed.values()].map((a) => ({
      key: { ...a.key },
      trapId: a.trapId,
      block: (a.flags & TRAP_FLAG_BLOCK) !== 0,
    }));
  }

  /** Reads the kernel's lost counters and queues a notice for each trap that lost more. */
  #pollLost(): void {
    if (this.#closed) return;
    for (const notice of this.#ledger.poll()) this.#queue.push(notice);
  }

  /**
   * The event stream: access events and lost notices, in arrival order. One consumer
   * only. It ends after {@linkcode TrapEngine.close} once the queued events are read,
   * and throws if the reader Worker fails.
   *
   * @throws {TypeError} when a second consumer asks for it
   */
  events(): AsyncIterableIterator<EngineEvent> {
    return this.#queue.stream(() => ({ error: this.#readerError, ended: this.#closing !== null }));
  }

  /**
   * Counters: events delivered, aggregated and lost accesses (per trap), backend.
   * Also queues lost notices for losses not yet reported.
   */
  counters(): EngineCounters {
    if (!this.#closed) this.#pollLost();
    const lostByTrap = this.#ledger.reportedByTrap();
    const userLost = this.#queue.lostInUserSpace;
    for (const [trapId, n] of userLost) {
      if (n > 0) lostByTrap.set(trapId, (lostByTrap.get(trapId) ?? 0) + n);
    }
    let lost = 0;
    for (const n of lostByTrap.values()) lost += n;
    let lostInUserSpace = 0;
    for (const n of userLost.values()) lostInUserSpace += n;
    return {
      backend: this.#backend,
      events: this.#queue.events,
      accesses: this.#queue.accesses,
      aggregated: this.#queue.accesses - this.#queue.events,
      lost,
      lostByTrap,
      lostInUserSpace,
      armed: this.#armed.size,
    };
  }

  /**
   * Stops the reader (draining the ring buffer), detaches the programs and frees every
   * map, fd and native buffer. Idempotent; the event stream ends once drained.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#queue.notify();
    try {
      if (this.#worker) {
        // 1: drain the ring first. 2: pinned and kept: what is left in the ring stays there
        // for the engine that adopts the pins (read now, it would be lost with this process).
        Atomics.store(new Int32Array(this.#stop), 0, this.pins ? 2 : 1);
        Atomics.notify(new Int32Array(this.#queue.credit), 0); // a paused Worker sees the stop at once
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, STOP_TIMEOUT_MS);
        });
        await Promise.race([this.#stopped, timeout]);
        clearTimeout(timer);
        this.#worker.terminate();
        this.#worker = null;
      }
      if (!this.#obj.closed) this.#pollLost();
    } finally {
      for (const link of this.#links) {
        try {
          link.close();
        } catch {
          // bpf_link__destroy frees the link even when detaching reports an error
        }
      }
      this.#obj.close();
      this.#closed = true;
      this.#queue.notify();
    }
  }

  /** Same as {@linkcode TrapEngine.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
