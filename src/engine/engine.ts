/**
 * The trap engine: the loaded programs and maps of one backend, with the parts that keep them
 * (trap_table.ts, cgroup_filter.ts, loss_ledger.ts), the reader Worker (ring_reader.ts) and the
 * event queue (event_queue.ts). Opening, with backend fallback, is in open.ts.
 *
 * @module
 */
import { BpfError, type BpfLink, type BpfMap, type BpfObject } from "../bpf/mod.ts";
import { EventQueue } from "./event_queue.ts";
import { CgroupFilter } from "./cgroup_filter.ts";
import { checkKey } from "./_codec.ts";
import { TrapTable } from "./trap_table.ts";
import { RingReader } from "./ring_reader.ts";
import { positiveInt, readerLimits } from "./_limits.ts";
import { LossLedger } from "./loss_ledger.ts";
import { type Loaded, removePins, type TrapConfig, writeConfig } from "./load.ts";
import { decodeConfig } from "./_structs.ts";
import { learnKey } from "./learn.ts";
import { toKernelDev } from "../common/dev.ts";
import type { Backend, BackendAttempt, EngineCounters, EngineEvent, TrapKey } from "./types.ts";

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
  #cgroupFilter: CgroupFilter;
  #config: TrapConfig;
  #queue: EventQueue;
  #traps: TrapTable;
  #ledger: LossLedger;
  readonly #reader = new RingReader();
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
    this.#cgroupFilter = new CgroupFilter(
      loaded.obj.map("trapped_cgroups"),
      limits.maxCgroups,
      (on) => {
        this.#config.cgroupFilter = on ? 1 : 0;
        writeConfig(this.#bss, this.#config);
      },
      () => this.#config.cgroupFilter !== 0,
    );
    this.#queue = new EventQueue(limits.maxQueuedEvents);
    this.#config = { ...limits.config };
    this.#ledger = new LossLedger(
      this.#lostMap,
      loaded.obj.map("lost_reported"),
      limits.maxTraps,
    );
    this.#traps = new TrapTable(this.#trapMap, this.#ledger, {
      setArmedCount: (n) => {
        if (this.#config.armed === n) return;
        this.#config.armed = n;
        writeConfig(this.#bss, this.#config);
      },
      onLost: (notice) => this.#queue.push(notice),
    });
    if (loaded.pins?.adoptedMaps) this.#adopt();
  }

  /**
   * Takes over the contents of adopted maps: the armed keys (with their trap ids and
   * slots), what of each slot's losses was reported, the cgroup filter; then writes this
   * process's own tgid into the live configuration, keeping its armed count and filter.
   */
  #adopt(): void {
    this.#traps.adopt();
    const bss = this.#bss.lookup(new Uint8Array(4));
    const filterOn = bss ? decodeConfig(bss).cgroupFilter !== 0 : false;
    if (filterOn) this.#cgroupFilter.adopt();
    this.#config = {
      ...this.#config,
      armed: this.#traps.size,
      cgroupFilter: filterOn ? 1 : 0,
    };
    writeConfig(this.#bss, this.#config);
  }

  /** @internal starts the reader Worker; resolves once it reads the ring buffer. */
  startReader(pollMs: number, aggregateWindowMs: number, ringBufferBytes: number): Promise<void> {
    return this.#reader.start({
      ringFd: this.#obj.map("events").fd,
      lostFd: this.#lostMap.fd,
      pollMs,
      aggregateWindowMs,
      credit: this.#queue.credit,
      ...readerLimits(this.#queue.capacity),
      ringBufferBytes,
    }, {
      onEvents: (events) => this.#queue.takeBatch(events),
      onLost: () => this.#pollLost(),
      onError: (error) => {
        this.#readerError = error;
        this.#queue.notify();
      },
    });
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
    return this.#reader.beats;
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
    this.#traps.arm(key, trapId, options.block === true);
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
    return learnKey(this.#bss, this.#learnMap, this.#config, path);
  }

  /**
   * Disarms a key.
   *
   * @returns false when it was not armed
   */
  disarm(key: TrapKey): boolean {
    this.#checkOpen();
    checkKey(key);
    return this.#traps.disarm(key);
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
    this.#cgroupFilter.set(ids);
  }

  /** The cgroup ids of {@linkcode TrapEngine.setCgroupFilter}, or null when every task is checked. */
  cgroupFilter(): bigint[] | null {
    return this.#cgroupFilter.ids();
  }

  /** The armed keys and their trap ids. */
  armed(): { key: TrapKey; trapId: number; block: boolean }[] {
    return this.#traps.list();
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
    // Ends only once closed: the reader's last batches arrive while close() waits for it.
    return this.#queue.stream(() => ({ error: this.#readerError, ended: this.#closed }));
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
      armed: this.#traps.size,
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
      await this.#reader.stop(this.#queue.credit, this.pins !== undefined);
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
