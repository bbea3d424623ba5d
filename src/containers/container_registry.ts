import {
  type ContainerProcess,
  findProcesses,
  type FindProcessOptions,
  parseContainerId,
} from "./find_process.ts";

/** A container in the registry: its process ids and what the caller attached to it. */
export interface ContainerEntry<T> extends ContainerProcess {
  /** What the caller attached to the container id (its pod, its container name, ...). */
  data: T;
}

/** What {@linkcode ContainerRegistry.refresh} changed. */
export interface RefreshResult {
  /** Ids whose process was found (new ones, and known ones whose process changed). */
  added: string[];
  /** Ids dropped: no longer wanted, or their process is gone. */
  removed: string[];
  /** Wanted ids without a running process. */
  missing: string[];
}

/**
 * The containers of this node, looked up by container id, cgroup v2 id or mount namespace id:
 * the ids every kernel event carries. Lookups are map reads; procfs is only read by
 * {@linkcode ContainerRegistry.refresh}, which the caller runs when its wanted set changes
 * (pod informer events) and periodically.
 *
 * @example
 * ```ts
 * const registry = new ContainerRegistry<{ pod: string }>();
 * await registry.refresh([["containerd://0f3a...", { pod: "default/web" }]]);
 * const entry = registry.getByMntNs(event.mntNs) ?? registry.getByCgroupId(event.cgroupId);
 * ```
 *
 * @typeParam T What the caller attaches to each container.
 */
export class ContainerRegistry<T = undefined> {
  #options: FindProcessOptions;
  #byId = new Map<string, ContainerEntry<T>>();
  #byCgroupId = new Map<bigint, ContainerEntry<T>>();
  #byMntNs = new Map<number, ContainerEntry<T>>();
  #refreshing: Promise<unknown> = Promise.resolve();

  /**
   * Creates an empty registry; {@linkcode ContainerRegistry.refresh} fills it.
   *
   * @param options Where procfs and cgroupfs are mounted.
   */
  constructor(options: FindProcessOptions = {}) {
    this.#options = { ...options };
  }

  /** The number of containers with a running process. */
  get size(): number {
    return this.#byId.size;
  }

  /**
   * The container with this id.
   *
   * @param containerId With or without its scheme (`containerd://`).
   */
  get(containerId: string): ContainerEntry<T> | undefined {
    return this.#byId.get(parseContainerId(containerId));
  }

  /**
   * The container whose cgroup v2 id this is.
   *
   * @param cgroupId As `bpf_get_current_cgroup_id()` returns it.
   */
  getByCgroupId(cgroupId: bigint): ContainerEntry<T> | undefined {
    return this.#byCgroupId.get(cgroupId);
  }

  /**
   * The container whose mount namespace this is.
   *
   * @param mntNs The inode of `/proc/<pid>/ns/mnt`.
   */
  getByMntNs(mntNs: number): ContainerEntry<T> | undefined {
    return this.#byMntNs.get(mntNs);
  }

  /** Every container in the registry. */
  values(): IterableIterator<ContainerEntry<T>> {
    return this.#byId.values();
  }

  /**
   * Makes the registry hold exactly the wanted containers that have a running process.
   *
   * Known containers whose process is still alive (same pid, same mount namespace) are kept
   * without a scan; the others are looked up in one scan of procfs. Lookups keep answering
   * from the previous state until the new one is complete. Concurrent calls run one after
   * the other.
   *
   * @param wanted Container ids (with or without scheme), alone or with the data to attach.
   * @returns What changed.
   * @throws {TypeError} when an id is not a container id
   */
  refresh(wanted: Iterable<string | readonly [string, T]>): Promise<RefreshResult> {
    const next = this.#refreshing.then(() => this.#refresh(wanted));
    this.#refreshing = next.catch(() => {});
    return next;
  }

  async #refresh(wanted: Iterable<string | readonly [string, T]>): Promise<RefreshResult> {
    const want = new Map<string, T>();
    for (const item of wanted) {
      const [id, data] = typeof item === "string" ? [item, undefined as T] : item;
      want.set(parseContainerId(id), data);
    }
    const procRoot = this.#options.procRoot ?? "/proc";
    const next = new Map<string, ContainerEntry<T>>();
    const lookup: string[] = [];
    for (const [id, data] of want) {
      const known = this.#byId.get(id);
      if (known && await sameNamespace(procRoot, known.pid, known.mntNs)) {
        next.set(id, { ...known, data });
      } else {
        lookup.push(id);
      }
    }
    const found = await findProcesses(lookup, this.#options);
    const added: string[] = [];
    for (const [id, process] of found) {
      next.set(id, { ...process, data: want.get(id) as T });
      added.push(id);
    }
    const removed = [...this.#byId.keys()].filter((id) => !next.has(id));
    const missing = [...want.keys()].filter((id) => !next.has(id));

    const byCgroupId = new Map<bigint, ContainerEntry<T>>();
    const byMntNs = new Map<number, ContainerEntry<T>>();
    for (const entry of next.values()) {
      if (entry.cgroupId !== undefined) byCgroupId.set(entry.cgroupId, entry);
      byMntNs.set(entry.mntNs, entry);
    }
    this.#byId = next;
    this.#byCgroupId = byCgroupId;
    this.#byMntNs = byMntNs;
    return { added, removed, missing };
  }
}

async function sameNamespace(procRoot: string, pid: number, mntNs: number): Promise<boolean> {
  try {
    return (await Deno.stat(`${procRoot}/${pid}/ns/mnt`)).ino === mntNs;
  } catch {
    return false;
  }
}
