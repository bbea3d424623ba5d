/**
 * The agent's planter: finds each target container's init process through procfs and plants
 * the trap file inside its root without following symlinks out of it (see src/containers/).
 *
 * @module
 */
import { parseMode } from "../api/mod.ts";
import { ContainerRegistry, ensureTrapFile, type FindProcessOptions } from "../containers/mod.ts";
import type { AccessEvent } from "../engine/mod.ts";
import type { TrapPlanter } from "./agent.ts";
import type { TrapTarget } from "./desired.ts";

/** Plants trap files in the containers of this node. */
export class ContainerTrapPlanter implements TrapPlanter {
  readonly #registry: ContainerRegistry<string>;
  readonly #procRoot: string;

  /**
   * Creates a planter that knows no containers until the first {@linkcode ContainerTrapPlanter.prepare}.
   *
   * @param options Where the host's procfs and cgroup2 are mounted.
   */
  constructor(options: FindProcessOptions = {}) {
    this.#registry = new ContainerRegistry<string>(options);
    this.#procRoot = options.procRoot ?? "/proc";
  }

  /** Finds the processes of every target container with one procfs scan. */
  async prepare(targets: readonly TrapTarget[]): Promise<void> {
    await this.#registry.refresh(targets.map((t) => [t.container.id, t.container.id] as const));
  }

  /** Plants one target's file; see {@linkcode TrapPlanter.plant}. */
  plant(target: TrapTarget): Promise<
    | { ok: true; dev: number; ino: string; cgroupId?: string }
    | { ok: false; reason: string; message: string }
  > {
    const entry = this.#registry.get(target.container.id);
    if (!entry) {
      return Promise.resolve({
        ok: false,
        reason: "ContainerGone",
        message: `no process of container ${target.container.id} on this node`,
      });
    }
    const result = ensureTrapFile(entry.pid, target.trap.path, {
      create: target.trap.create,
      mode: parseMode(target.trap.mode),
      content: target.trap.content,
      owner: target.trap.owner,
      procRoot: this.#procRoot,
      mntNs: entry.mntNs,
    });
    if (!result.ok) {
      return Promise.resolve({
        ok: false,
        reason: result.problem.reason,
        message: result.problem.message,
      });
    }
    return Promise.resolve({
      ok: true,
      dev: result.file.kernelDev,
      ino: result.file.ino.toString(),
      cgroupId: entry.cgroupId?.toString(),
    });
  }

  /** The container id of the process behind an event, when it runs in a known container. */
  containerOf(event: AccessEvent): string | undefined {
    return (this.#registry.getByCgroupId(event.cgroupId) ?? this.#registry.getByMntNs(event.mntNs))
      ?.data;
  }
}
