/**
 * Builds `KiveAlert` objects from kernel access events and the trap registration they hit.
 *
 * `alertVersion: v1` has exactly the keys of the original KiveAlert; `v2alpha1` adds the policy
 * namespace, the parent process, the executable path, argv as a list, the access kind, the
 * number of accesses the event stands for and the action taken. docs/ALERTS.md describes every
 * field.
 *
 * @module
 */
import { rfc3339 } from "../common/time.ts";
import type {
  KiveAlertPod,
  KiveAlertV1,
  KiveAlertV2alpha1,
  KiveLossAlert,
} from "../delivery/mod.ts";
import type { AccessEvent } from "../engine/mod.ts";

/** What the agent knows about an armed trap in one container. */
export interface TrapRegistration {
  /** Kernel device number (`major << 20 | minor`) and inode of the trap file. */
  dev: number;
  /** Inode number of the trap file, in decimal: it may not fit a JavaScript number. */
  ino: string;
  /** The policy the trap belongs to. */
  policy: { namespace: string; name: string; uid: string };
  /** Position of the trap in the policy's `spec.traps`. */
  trapIndex: number;
  /** The trap file's path inside the container. */
  path: string;
  /** The alert format the policy asks for: `v1` or `v2alpha1`. */
  alertVersion: string;
  /** The trap's free-form pairs, copied into every alert as `custom-metadata`. */
  metadata: Record<string, string>;
  /** URL alerts are POSTed to instead of stdout. */
  callback?: string;
  /** PEM CA bundle trusted for an https callback (v2alpha1). */
  callbackCABundle?: string;
  /** Secret in the agent's namespace whose keys are callback headers (v2alpha1). */
  callbackHeadersSecret?: string;
  /** The shape of the callback's body (v2alpha1): kive, falco or cloudevents. */
  callbackFormat?: "kive" | "falco" | "cloudevents";
  /** What the trap does on access; `block` also denies it (lsm backend only). */
  action: "alert" | "block";
  /** The pod the container belongs to. */
  pod: { namespace: string; name: string; uid: string };
  /** The container the trap is planted in; `id` as the runtime reports it. */
  container: { name: string; id: string };
  /** The node the container runs on. */
  node: string;
  /** cgroup v2 id of the container, for the engine's optional prefilter. */
  cgroupId?: string;
  /** The generated decoy the file holds (v2alpha1 `contentFrom.generate`). */
  decoy?: { id: string; kind: string };
}

const MAY_EXEC = 1;
const MAY_WRITE = 2;
const MAY_READ = 4;
const MAY_APPEND = 8;

/**
 * Names the access in words: `read`, `write`, `read-write`, `append`, `exec`.
 *
 * @param mask The kernel's MAY_* bits.
 * @returns A short word for humans and filters.
 */
export function accessKind(mask: number): string {
  if (mask & MAY_EXEC) return "exec";
  if (mask & MAY_APPEND) return "append";
  const read = (mask & MAY_READ) !== 0;
  const write = (mask & MAY_WRITE) !== 0;
  if (read && write) return "read-write";
  if (write) return "write";
  if (read) return "read";
  return "open";
}

/** RFC 3339 in UTC with second precision, as the original alerts carry (`2025-08-02T16:51:19Z`). */
export function rfc3339Seconds(timeNs: bigint): string {
  return rfc3339(Number(timeNs / 1_000_000n));
}

/** The fields every alert starts with, in the order of the original KiveAlert. */
function alertHead(trap: TrapRegistration, timestamp: string) {
  return {
    "kive-alert-version": trap.alertVersion === "v2alpha1" ? "v2alpha1" as const : "v1" as const,
    "kive-policy-name": trap.policy.name,
    timestamp,
  };
}

function alertPod(trap: TrapRegistration): KiveAlertPod {
  return {
    name: trap.pod.name,
    namespace: trap.pod.namespace,
    container: { id: trap.container.id, name: trap.container.name },
  };
}

/**
 * Builds the summary alert of accesses the kernel could not report (its ring buffer was full):
 * the trap's usual fields, an empty `process`, `mask` 0 and `lost-accesses`.
 *
 * @param trap The registration of the trap.
 * @param kernelId The boot id of the kernel that lost them.
 * @param count Accesses lost.
 * @returns The alert object (without the `KiveAlert` wrapper).
 */
export function buildLossAlert(
  trap: TrapRegistration,
  kernelId: string,
  count: number,
): KiveLossAlert {
  const alert: KiveLossAlert = {
    ...alertHead(trap, rfc3339Seconds(BigInt(Date.now()) * 1_000_000n)),
    metadata: { path: trap.path, inode: Number(trap.ino), mask: 0, "kernel-id": kernelId },
    "custom-metadata": { ...trap.metadata },
    pod: alertPod(trap),
    node: { name: trap.node },
    process: {},
    "lost-accesses": count,
  };
  if (trap.decoy && trap.alertVersion === "v2alpha1") {
    alert.decoy = { id: trap.decoy.id, kind: trap.decoy.kind };
  }
  return alert;
}

/**
 * Builds the alert of one access, in the version the trap's policy asks for.
 *
 * @param event The kernel event.
 * @param trap The registration of the trap it hit.
 * @param kernelId The boot id of the kernel that saw it.
 * @param alertId The access's id (v2alpha1 bodies carry it as `alert-id`; every callback
 *   request as the `kive-alert-id` header).
 * @returns The alert object (without the `KiveAlert` wrapper).
 */
export function buildAlert(
  event: AccessEvent,
  trap: TrapRegistration,
  kernelId: string,
  alertId?: string,
): KiveAlertV1 | KiveAlertV2alpha1 {
  const timestamp = rfc3339Seconds(event.timeNs);
  const metadata = {
    path: trap.path,
    inode: Number(event.ino),
    mask: event.mask,
    "kernel-id": kernelId,
  };
  const process = {
    pid: event.pid,
    tgid: event.tgid,
    uid: event.uid,
    gid: event.gid,
    binary: event.comm,
    cwd: event.cwd,
    arguments: event.args.slice(1).join(" "),
  };
  const custom = { ...trap.metadata };
  const node = { name: trap.node };
  if (trap.alertVersion !== "v2alpha1") {
    return {
      "kive-alert-version": "v1",
      "kive-policy-name": trap.policy.name,
      timestamp,
      metadata,
      "custom-metadata": custom,
      pod: alertPod(trap),
      node,
      process,
    };
  }
  const alert: KiveAlertV2alpha1 = {
    "kive-alert-version": "v2alpha1",
    "kive-policy-name": trap.policy.name,
    timestamp,
    metadata: {
      ...metadata,
      access: accessKind(event.mask),
      device: event.dev,
      "trap-index": trap.trapIndex,
    },
    "custom-metadata": custom,
    pod: { ...alertPod(trap), uid: trap.pod.uid },
    node,
    process: {
      ...process,
      ppid: event.ppid,
      exe: event.exe,
      argv: event.args,
      "cgroup-id": event.cgroupId.toString(),
      "mount-ns": event.mntNs,
      truncated: Object.entries(event.truncated).filter(([, cut]) => cut).map(([name]) => name),
    },
    "kive-policy-namespace": trap.policy.namespace,
    "timestamp-ns": event.timeNs.toString(),
    count: event.count,
    action: event.blocked ? "blocked" : "alerted",
  };
  if (alertId) alert["alert-id"] = alertId;
  if (trap.decoy) alert.decoy = { id: trap.decoy.id, kind: trap.decoy.kind };
  return alert;
}
