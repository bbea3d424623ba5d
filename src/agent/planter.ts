/**
 * The agent's planter: finds each target container's init process through procfs and plants
 * the trap file inside its root without following symlinks out of it (see src/containers/),
 * then watches the planted file so that changes the container makes are seen at once.
 *
 * @module
 */
import { parseMode } from "../api/mod.ts";
import {
  ContainerRegistry,
  ensureTrapFile,
  type FindProcessOptions,
  type TrapFileSignal,
  TrapFileWatcher,
} from "../containers/mod.ts";
import type { AccessEvent } from "../engine/mod.ts";
import type { PlantResult, TrapPlanter } from "./agent_options.ts";
import type { TrapTarget } from "./desired.ts";
import { TrapContent } from "./trap_content.ts";

/** Options of {@linkcode ContainerTrapPlanter}. */
export interface ContainerTrapPlanterOptions extends FindProcessOptions {
  /** Watch planted files with inotify. Default true. */
  watch?: boolean;
  /** Told once when the files cannot be watched (they are then only verified periodically). */
  onWatchProblem?: (message: string) => void;
  /** What created files hold; without it, Secrets named by `secretKeyRef` are unreadable. */
  content?: TrapContent;
}

/** Plants trap files in the containers of this node. */
export class ContainerTrapPlanter implements TrapPlanter {
  readonly #registry: ContainerRegistry<string>;
  readonly #procRoot: string;
  #watcher?: TrapFileWatcher;
  #listener?: (signals: TrapFileSignal[]) => void;
  readonly #onWatchProblem?: (message: string) => void;
  #watchProblemTold = false;
  readonly #content: TrapContent;

  /**
   * Creates a planter that knows no containers until the first {@linkcode ContainerTrapPlanter.prepare}.
   *
   * @param options Where the host's procfs and cgroup2 are mounted; whether to watch files.
   */
  constructor(options: ContainerTrapPlanterOptions = {}) {
    this.#registry = new ContainerRegistry<string>(options);
    this.#procRoot = options.procRoot ?? "/proc";
    this.#onWatchProblem = options.onWatchProblem;
    this.#content = options.content ?? new TrapContent();
    if (options.watch ?? true) {
      try {
        this.#watcher = new TrapFileWatcher({ onSignals: (s) => this.#listener?.(s) });
      } catch (error) {
        this.#tell(error instanceof Error ? error.message : String(error));
      }
    }
  }

  /** Finds the processes of every target container with one procfs scan. */
  async prepare(targets: readonly TrapTarget[]): Promise<void> {
    await this.#registry.refresh(targets.map((t) => [t.container.id, t.container.id] as const));
    await this.#content.prepare(targets);
  }

  /** Plants one target's file and watches it; see {@linkcode TrapPlanter.plant}. */
  async plant(target: TrapTarget): Promise<PlantResult> {
    const entry = this.#registry.get(target.container.id);
    if (!entry) {
      return {
        ok: false,
        reason: "ContainerGone",
        message: `no process of container ${target.container.id} on this node`,
      };
    }
    const plan = await this.#content.plan(target);
    let watchProblem: string | undefined;
    const result = ensureTrapFile(entry.pid, target.trap.path, {
      // A decoy or Secret content exists to be planted: contentFrom implies create.
      create: target.trap.create || target.trap.contentFrom !== undefined,
      mode: parseMode(target.trap.mode),
      content: plan.content,
      mark: plan.mark,
      owner: target.trap.owner,
      procRoot: this.#procRoot,
      mntNs: entry.mntNs,
      onPlanted: this.#watcher
        ? (handles, file) => {
          watchProblem = this.#watcher?.watch(target.key, handles, file.ino.toString());
        }
        : undefined,
    });
    if (watchProblem) this.#tell(watchProblem);
    if (!result.ok) {
      const reason = result.problem.reason === "ContentUnavailable" && plan.problem
        ? plan.problem.reason
        : result.problem.reason;
      return { ok: false, reason, message: result.problem.message };
    }
    const decoy = plan.decoyOf?.(result.file);
    return {
      ok: true,
      dev: result.file.kernelDev,
      ino: result.file.ino.toString(),
      cgroupId: entry.cgroupId?.toString(),
      created: result.file.created,
      mode: result.file.mode,
      uid: result.file.uid,
      gid: result.file.gid,
      nlink: result.file.nlink,
      btime: result.file.btime,
      ...(decoy ? { decoy } : {}),
    };
  }

  /** The container id of the process behind an event, when it runs in a known container. */
  containerOf(event: AccessEvent): string | undefined {
    return (this.#registry.getByCgroupId(event.cgroupId) ?? this.#registry.getByMntNs(event.mntNs))
      ?.data;
  }

  /** Where watch signals go. */
  onSignals(listener: (signals: TrapFileSignal[]) => void): void {
    this.#listener = listener;
  }

  /** Drops the watches of everything not listed. */
  keep(live: ReadonlyMap<string, ReadonlySet<string>>): void {
    this.#watcher?.keep(live);
  }

  /** Whether the inode of this target is still watched. */
  watches(key: string, ino: string): boolean {
    return this.#watcher?.watches(key, ino) ?? false;
  }

  /** Stops watching. */
  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  #tell(message: string): void {
    if (this.#watchProblemTold) return;
    this.#watchProblemTold = true;
    this.#onWatchProblem?.(message);
  }
}
