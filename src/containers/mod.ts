/**
 * Containers on this node: finding a container's init process from its id, a registry that
 * maps the cgroup and mount namespace ids of kernel events back to containers, and planting
 * trap files inside a container without following symlinks out of it.
 *
 * @example
 * ```ts
 * import { ensureTrapFile, findProcess } from "./mod.ts";
 *
 * const process = await findProcess("containerd://0f3a...");
 * if (process) {
 *   const result = ensureTrapFile(process.pid, "/secret.txt", {
 *     create: true,
 *     mode: 0o444,
 *     mntNs: process.mntNs,
 *   });
 *   if (!result.ok) console.log(result.problem.reason, result.problem.message);
 * }
 * ```
 *
 * @module
 */
export {
  cgroupIdOf,
  cgroupPathIds,
  type ContainerProcess,
  findProcess,
  findProcesses,
  type FindProcessOptions,
  parseContainerId,
} from "./find_process.ts";
export {
  type ContainerEntry,
  ContainerRegistry,
  type RefreshResult,
} from "./container_registry.ts";
export {
  ensureTrapFile,
  type EnsureTrapFileOptions,
  type NewFile,
  type PlantedHandles,
  splitTrapPath,
  type TrapFileIdentity,
  type TrapFileProblem,
  type TrapFileReason,
  type TrapFileResult,
} from "./trap_file.ts";
export { type TrapFileSignal, TrapFileWatcher, type TrapFileWatcherOptions } from "./trap_watch.ts";
