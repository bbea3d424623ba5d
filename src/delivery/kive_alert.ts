/**
 * The `KiveAlert` object, as printed (`{"KiveAlert": {...}}`) and POSTed, in its two versions
 * and the loss summary. src/agent/alert.ts builds them; every sink takes them as they are.
 * docs/ALERTS.md describes each field. Key order is part of the format: the builders write
 * the keys in the order declared here.
 *
 * @module
 */

/** `metadata`: the trap file and the access, in both versions. */
export interface KiveAlertMetadata {
  /** The trap's path inside the container. */
  path: string;
  inode: number;
  /** The kernel's MAY_* bits of the access; 0 in a loss summary. */
  mask: number;
  /** The boot id of the kernel that saw the access. */
  "kernel-id": string;
}

/** `pod`: where the trap is planted. */
export interface KiveAlertPod {
  name: string;
  namespace: string;
  container: { id: string; name: string };
}

/** `process`: who opened the trap, in v1's fields. */
export interface KiveAlertProcess {
  pid: number;
  tgid: number;
  uid: number;
  gid: number;
  /** The thread's comm (at most 15 bytes). */
  binary: string;
  cwd: string;
  /** argv[1:], joined with spaces. */
  arguments: string;
}

/** The keys every alert starts with. */
interface KiveAlertHead {
  "kive-policy-name": string;
  /** RFC 3339, whole seconds, UTC. */
  timestamp: string;
}

/** The keys every alert has after `metadata`. */
interface KiveAlertTrapPart {
  /** The trap's free-form pairs. */
  "custom-metadata": Record<string, string>;
}

/** The seed's alert: exactly its keys, in its order. */
export interface KiveAlertV1 extends KiveAlertHead, KiveAlertTrapPart {
  "kive-alert-version": "v1";
  metadata: KiveAlertMetadata;
  pod: KiveAlertPod;
  node: { name: string };
  process: KiveAlertProcess;
}

/** The v2alpha1 alert: v1's keys, each object extended, then the keys only v2alpha1 has. */
export interface KiveAlertV2alpha1 extends KiveAlertHead, KiveAlertTrapPart {
  "kive-alert-version": "v2alpha1";
  metadata: KiveAlertMetadata & {
    /** `read`, `write`, `read-write`, `append`, `exec` or `open`. */
    access: string;
    /** Kernel device number of the file system (`major << 20 | minor`). */
    device: number;
    /** Position of the trap in the policy's `spec.traps`. */
    "trap-index": number;
  };
  pod: KiveAlertPod & { uid: string };
  node: { name: string };
  process: KiveAlertProcess & {
    ppid: number;
    /** The executable's path as the process sees it. */
    exe: string;
    argv: string[];
    /** cgroup v2 id, in decimal. */
    "cgroup-id": string;
    "mount-ns": number;
    /** Which of exe, args and cwd were cut to fit the kernel's record. */
    truncated: string[];
  };
  "kive-policy-namespace": string;
  /** Nanoseconds since the epoch, in decimal. */
  "timestamp-ns": string;
  /** Accesses this alert stands for (identical ones within the aggregation window). */
  count: number;
  /** `blocked` only where the lsm backend denied the open. */
  action: "alerted" | "blocked";
  /** The access's id, also the `Kive-Alert-Id` header of callbacks. */
  "alert-id"?: string;
  /** The generated decoy in the file (`contentFrom.generate`), see docs/DECOYS.md. */
  decoy?: KiveAlertDecoy;
}

/** `decoy`: the generated credentials an accessed trap file holds. */
export interface KiveAlertDecoy {
  /** The decoy id embedded in the credentials (16 characters of A-Z and 2-7). */
  id: string;
  /** The generated kind, e.g. `aws-credentials`. */
  kind: string;
}

/**
 * The summary of accesses the kernel could not report (its ring buffer was full): the trap's
 * usual fields, an empty `process`, `mask` 0 and the number lost.
 */
export interface KiveLossAlert extends KiveAlertHead, KiveAlertTrapPart {
  "kive-alert-version": "v1" | "v2alpha1";
  metadata: KiveAlertMetadata;
  pod: KiveAlertPod;
  node: { name: string };
  process: Record<string, never>;
  "lost-accesses": number;
  /** In v2alpha1, the decoy the file holds, as in the alerts it stands for. */
  decoy?: KiveAlertDecoy;
}

/** Any alert the agent delivers. */
export type KiveAlert = KiveAlertV1 | KiveAlertV2alpha1 | KiveLossAlert;

/** The policy an alert belongs to (v1 alerts do not name the namespace: empty then). */
export function alertPolicy(alert: KiveAlert): { name: string; namespace: string } {
  return {
    name: alert["kive-policy-name"],
    namespace: "kive-policy-namespace" in alert ? alert["kive-policy-namespace"] : "",
  };
}
