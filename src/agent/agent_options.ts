/**
 * What a {@linkcode NodeAgent} is given: its node, its clients, the planter that reaches into
 * containers, where alerts go and how often it does what.
 *
 * @module
 */
import type { AlertFormat } from "../delivery/mod.ts";
import type { AgentWatches } from "./watches.ts";
import type {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
} from "@kubernetes/client-node";
import type { AgentMetrics } from "../delivery/mod.ts";
import type { TrapFileSignal } from "../containers/mod.ts";
import type { AccessEvent, TrapEngine } from "../engine/mod.ts";
import type { AlertOutput } from "./alert_router.ts";
import type { TrapTarget } from "./desired.ts";
import type { Logger } from "./log.ts";

/** Plants trap files; the agent's window onto containers. */
export interface TrapPlanter {
  /** Called before a round of {@linkcode TrapPlanter.plant} with every target of the round. */
  prepare?(targets: readonly TrapTarget[]): Promise<void>;
  /**
   * Makes sure the target's file exists (creating it when the trap says so) and returns the
   * identity the kernel sees.
   */
  plant(target: TrapTarget): Promise<PlantResult>;
  /** The container id (`runtime://hex`) an accessing process runs in, when known. */
  containerOf?(event: AccessEvent): string | undefined;
  /** Where signals of watched trap files go (a planter without watches never calls it). */
  onSignals?(listener: (signals: TrapFileSignal[]) => void): void;
  /** Keeps watching only these trap inodes, by target key (after each planting round). */
  keep?(live: ReadonlyMap<string, ReadonlySet<string>>): void;
  /** Whether the inode of this target is still watched, so that its deletion would be seen. */
  watches?(key: string, ino: string): boolean;
  /** Releases the watches. */
  close?(): void;
}

/** What {@linkcode TrapPlanter.plant} found or did. */
export type PlantResult =
  | {
    ok: true;
    dev: number;
    ino: string;
    cgroupId?: string;
    /** Whether the planter created the file just now. */
    created?: boolean;
    /** Permission bits, host owner and link count, to notice later changes. */
    mode?: number;
    uid?: number;
    gid?: number;
    nlink?: number;
    /** Birth time (ns, decimal), where the file system keeps one: tells a reused inode number. */
    btime?: string;
    /** The generated decoy the file holds: created now, or found with the agent's mark. */
    decoy?: { id: string; kind: string };
  }
  | { ok: false; reason: string; message: string };

/** The clients the agent uses. */
export interface AgentApis {
  /** Credentials and server, for the watches. */
  kubeConfig: KubeConfig;
  /** Pods, registration ConfigMaps and callback header Secrets. */
  core: CoreV1Api;
  /** KivePolicy objects and their status. */
  custom: CustomObjectsApi;
  /** The Lease that makes one agent per kernel its leader. */
  coordination: CoordinationV1Api;
  /** Kubernetes Events on pods whose trap was accessed; none are created without it. */
  events?: EventsV1Api;
}

/** Options of {@linkcode NodeAgent}. */
export interface NodeAgentOptions {
  /** The node this agent serves; it watches only pods scheduled there. */
  nodeName: string;
  /** Namespace of the agent's Leases and ConfigMaps. */
  namespace: string;
  /** `/proc/sys/kernel/random/boot_id` of the kernel. */
  kernelId: string;
  /** The API clients to work through. */
  apis: AgentApis;
  /** Plants trap files in containers. */
  planter: TrapPlanter;
  /** Where alerts go. */
  output: AlertOutput;
  /** The shape alerts are written in, unless a trap's `callbackFormat` says otherwise. Default kive. */
  alertFormat?: AlertFormat;
  /** Opens the kernel engine when this agent becomes leader. */
  openEngine: () => Promise<TrapEngine>;
  /** The operational log. */
  log: Logger;
  /** Metrics to update; none by default. */
  metrics?: AgentMetrics;
  /** How long the kernel leader's Lease is valid without renewal. Default 15 s. */
  leaseSeconds?: number;
  /** How often the Lease is renewed or retried. Default 2 s. */
  leaseRetrySeconds?: number;
  /**
   * Check only processes in the cgroups of trapped containers (the engine's cgroup prefilter),
   * when every trap of the kernel is in a container whose cgroup v2 id is known. Cheaper for
   * everything else on the node, but accesses from outside those containers (the host, other
   * containers sharing a volume) are not seen. Default false.
   */
  cgroupFilter?: boolean;
  /** Periodic reconcile. Default 15 s. */
  resyncSeconds?: number;
  /** Re-check planted files this often (a workload may delete one). Default 60 s. */
  verifySeconds?: number;
  /** Watch relist period. Default 300 s. */
  relistSeconds?: number;
  /**
   * Whether this agent writes the policy-wide status (`conditions`, `armed`): one agent at a
   * time should (the main program passes the webhook certificate writer's lease). Default: yes.
   */
  writesPolicyConditions?: () => boolean;
  /**
   * Watch caches to read instead of watching the API server (the agent's unit tests give
   * scripted ones); the agent starts and stops them as its own.
   */
  watches?: AgentWatches;
  /** Create a Kubernetes Event on the pod per alert, at most one per pod per this many s. Default 10. */
  podEventSeconds?: number;
}
