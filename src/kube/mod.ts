/**
 * Kubernetes plumbing the agent shares: client configuration, resilient watches, Lease
 * election.
 *
 * @module
 */
export { apiStatus, loadKubeConfig } from "./client.ts";
export { DenoKubeConfig, HttpClients } from "./deno_http.ts";
export { LeaseElector, type LeaseElectorOptions } from "./lease.ts";
export { ResourceWatcher, type ResourceWatcherOptions } from "./watcher.ts";
export {
  applyConfigMap,
  type ConfigMapApply,
  escapeForYamlReader,
  serverSideApplyOptions,
} from "./apply.ts";
export { NativeWatch, type NativeWatchOptions } from "./native_watch.ts";
