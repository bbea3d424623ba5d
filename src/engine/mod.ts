/**
 * The eBPF trap engine: arms files by (device, inode) in the kernel and streams one
 * event per access, with the accessing process's context captured in the kernel
 * (pid, tgid, parent, uid, gid, comm, cgroup, mount namespace, executable, arguments,
 * working directory). Hook backends lsm, fentry, kprobe and tracepoint are tried in
 * that order; the ring buffer is read by a Worker so the event loop never blocks.
 *
 * Depends on nothing but Deno and libbpf (see ../bpf/mod.ts).
 *
 * @example
 * ```ts
 * import { openEngine } from "./mod.ts";
 * await using engine = await openEngine();
 * console.log(engine.backend);
 * engine.armPath("/srv/secret.txt", 1);
 * for await (const event of engine.events()) {
 *   if (event.kind === "access") console.log(event.exe, event.args, event.cwd);
 * }
 * ```
 *
 * @module
 */
export { type ArmOptions, type ArmPathOptions, TrapEngine } from "./engine.ts";
export {
  BackendError,
  BACKENDS,
  defaultObjectPath,
  type EngineOptions,
  openEngine,
} from "./open.ts";
export { splitKernelDev, toKernelDev } from "../common/dev.ts";
export {
  type AccessEvent,
  type Backend,
  type BackendAttempt,
  type EngineCounters,
  type EngineEvent,
  type Hook,
  type LostNotice,
  MAY_APPEND,
  MAY_EXEC,
  MAY_OPEN,
  MAY_READ,
  MAY_WRITE,
  type TrapKey,
} from "./types.ts";
export { LAYOUTS as KERNEL_STRUCT_LAYOUTS } from "./_structs.ts";
