/**
 * The node agent: joins KivePolicies and the pods of its node into trap files, hands their
 * registrations to the leader of its kernel, and, while leading, arms them in the kernel and
 * turns kernel events into KiveAlerts.
 *
 * Everything is level-based: a reconcile computes the desired set from the watch caches and
 * converges the files, the published registrations, the status and (as leader) the kernel to
 * it. Events only schedule a reconcile; a periodic one catches anything missed.
 *
 * @module
 */
import {
  type CoordinationV1Api,
  type CoreV1Api,
  type CustomObjectsApi,
  type EventsV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  V1MicroTime,
} from "@kubernetes/client-node";
import {
  canonicalJson,
  FINALIZER,
  formatProblems,
  GROUP,
  type KivePolicyV2,
  PLURAL,
  validateSpec,
} from "../api/mod.ts";
import type { AccessEvent, EngineEvent, TrapEngine } from "../engine/mod.ts";
import { apiStatus, LeaseElector, ResourceWatcher } from "../kube/mod.ts";
import type { Alert } from "../delivery/mod.ts";
import type { AgentMetrics } from "../delivery/mod.ts";
import { buildAlert, buildLossAlert, rfc3339Seconds, type TrapRegistration } from "./alert.ts";
import {
  computeDesired,
  type PodObject,
  podView,
  type TrapProblem,
  type TrapTarget,
} from "./desired.ts";
import { KernelArms, type SyncResult } from "./kernel_arms.ts";
import type { Logger } from "./log.ts";
import { nodeStatusEntries, type PlantOutcome } from "./status.ts";

/** Label on each node's registration ConfigMap: the kernel it runs on. */
export const KERNEL_LABEL = `${GROUP}/kernel-id`;
/** Label on each node's registration ConfigMap: the node. */
export const NODE_LABEL = `${GROUP}/node`;
const REGISTRATIONS_KEY = "registrations.json";
/**
 * Registrations per ConfigMap are kept under this many bytes: the API server refuses requests
 * over 3 MiB and etcd objects over 1.5 MiB, and 10,000 registrations take about 5 MiB.
 */
export const MAX_CONFIGMAP_BYTES = 900_000;

/**
 * Splits registrations into JSON arrays of at most `maxBytes` each (at least one, possibly
 * empty, so that a node with nothing armed still publishes that).
 *
 * @param registrations This node's registrations.
 * @param maxBytes Size limit of one chunk's JSON text.
 * @returns The JSON texts.
 */
export function chunkRegistrations(
  registrations: readonly TrapRegistration[],
  maxBytes: number,
): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let size = 2;
  for (const registration of registrations) {
    const text = JSON.stringify(registration);
    if (current.length > 0 && size + text.length + 1 > maxBytes) {
      chunks.push(`[${current.join(",")}]`);
      current = [];
      size = 2;
    }
    current.push(text);
    size += text.length + 1;
  }
  chunks.push(`[${current.join(",")}]`);
  return chunks;
}

/** Label a Secret needs before its keys are sent as callback headers. */
export const HEADERS_LABEL = `${GROUP}/callback-headers`;
const FIELD_MANAGER_PREFIX = "kivebpf-agent";

/** Plants trap files; the agent's window onto containers. */
export interface TrapPlanter {
  /** Called before a round of {@linkcode TrapPlanter.plant} with every target of the round. */
  prepare?(targets: readonly TrapTarget[]): Promise<void>;
  /**
   * Makes sure the target's file exists (creating it when the trap says so) and returns the
   * identity the kernel sees.
   */
  plant(target: TrapTarget): Promise<
    | { ok: true; dev: number; ino: string; cgroupId?: string }
    | { ok: false; reason: string; message: string }
  >;
  /** The container id (`runtime://hex`) an accessing process runs in, when known. */
  containerOf?(event: AccessEvent): string | undefined;
}

/** Where alerts go. */
export interface AlertOutput {
  /** Takes one alert; must return at once and never throw. */
  deliver(alert: Alert): void;
}

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
  /** Create a Kubernetes Event on the pod per alert, at most one per pod per this many s. Default 10. */
  podEventSeconds?: number;
}

interface Planted {
  target: TrapTarget;
  outcome: PlantOutcome;
  registration?: TrapRegistration;
  checkedAt: number;
}

/** Runs the agent of one node. */
export class NodeAgent {
  readonly #o: NodeAgentOptions;
  readonly #policies: ResourceWatcher<KubernetesObject>;
  readonly #pods: ResourceWatcher<KubernetesObject>;
  readonly #peers: ResourceWatcher<KubernetesObject>;
  readonly #elector: LeaseElector;
  readonly #arms = new KernelArms();
  #planted = new Map<string, Planted>();
  #engine?: TrapEngine;
  #engineLoop?: Promise<void>;
  #publishedRegistrations?: string;
  #publishedChunks = 0;
  #appliedStatus = new Map<string, string>();
  #reconcileTimer?: ReturnType<typeof setTimeout>;
  #resyncTimer?: ReturnType<typeof setInterval>;
  #reconciling?: Promise<void>;
  #again = false;
  #stopped = false;
  #leading = false;
  #leadership: Promise<void> = Promise.resolve();
  #lastPodEvent = new Map<string, number>();
  #alertSeq = 0;
  /** Set while leading and before the first kernel sync; see #setLeading. */
  #heldEvents: EngineEvent[] | null = null;
  #headers = new Map<string, Record<string, string>>();
  /** This node's registrations the kernel refused, by registration key, with the error. */
  #armFailures = new Map<string, string>();
  /** This node's registrations whose `block` the backend cannot enforce (armed to alert). */
  #blockNotEnforced = new Set<string>();

  /**
   * Prepares the agent; it watches, plants and arms nothing until started.
   *
   * @param options Node, clients, ports and timings.
   */
  constructor(options: NodeAgentOptions) {
    this.#o = options;
    const { kubeConfig, custom, core } = options.apis;
    const onChange = () => this.schedule();
    const onError = (what: string) => (error: unknown) =>
      options.log.warn(`watch of ${what} failed; restarting`, { error: describe(error) });
    this.#policies = new ResourceWatcher(kubeConfig, {
      path: `/apis/${GROUP}/v2alpha1/${PLURAL}`,
      list: () =>
        custom.listClusterCustomObject({
          group: GROUP,
          version: "v2alpha1",
          plural: PLURAL,
        }) as Promise<
          KubernetesListObject<KubernetesObject>
        >,
      onChange,
      onError: onError("KivePolicies"),
      relistSeconds: options.relistSeconds,
    });
    const nodeSelector = `spec.nodeName=${options.nodeName}`;
    this.#pods = new ResourceWatcher(kubeConfig, {
      path: "/api/v1/pods",
      fieldSelector: nodeSelector,
      list: () => core.listPodForAllNamespaces({ fieldSelector: nodeSelector }),
      onChange,
      onError: onError("pods"),
      relistSeconds: options.relistSeconds,
    });
    const kernelSelector = `${KERNEL_LABEL}=${options.kernelId}`;
    this.#peers = new ResourceWatcher(kubeConfig, {
      path: `/api/v1/namespaces/${options.namespace}/configmaps`,
      labelSelector: kernelSelector,
      list: () =>
        core.listNamespacedConfigMap({
          namespace: options.namespace,
          labelSelector: kernelSelector,
        }),
      onChange: () => {
        if (this.#leading) this.schedule();
      },
      onError: onError("registration ConfigMaps"),
      relistSeconds: options.relistSeconds,
    });
    this.#elector = new LeaseElector(options.apis.coordination, {
      namespace: options.namespace,
      name: `kivebpf-kernel-${options.kernelId}`,
      identity: options.nodeName,
      leaseSeconds: options.leaseSeconds,
      retrySeconds: options.leaseRetrySeconds,
      labels: { [KERNEL_LABEL]: options.kernelId, "app.kubernetes.io/name": "kivebpf" },
      onChange: (leading) => {
        this.#leadership = this.#leadership.then(() => this.#setLeading(leading));
      },
      onError: (error) => options.log.warn("lease update failed", { error: describe(error) }),
      onTakeover: ({ seconds, previousHolder }) => {
        options.log.info("took over the kernel's Lease", { previousHolder, seconds });
        const labels = { kernel_id: options.kernelId };
        options.metrics?.leaseTakeoverSeconds.set(labels, seconds);
        options.metrics?.leaseTakeovers.inc(labels);
      },
    });
  }

  /** Whether this agent leads its kernel. */
  get leading(): boolean {
    return this.#leading;
  }

  /** The active engine backend, while leading. */
  get backend(): string | undefined {
    return this.#engine?.backend;
  }

  /** Starts watching, campaigning and reconciling. */
  async start(): Promise<void> {
    const { log, nodeName, kernelId } = this.#o;
    log.info("agent starting", { node: nodeName, kernelId });
    await Promise.all([this.#policies.start(), this.#pods.start(), this.#peers.start()]);
    await this.#elector.start();
    this.#resyncTimer = setInterval(() => this.schedule(), (this.#o.resyncSeconds ?? 15) * 1000);
    this.schedule(0);
  }

  /** Asks for a reconcile soon; bursts of events collapse into one. */
  schedule(delayMs = 100): void {
    if (this.#stopped) return;
    clearTimeout(this.#reconcileTimer);
    this.#reconcileTimer = setTimeout(() => this.#runReconcile(), delayMs);
  }

  /** Waits until a reconcile has run from the current caches (tests, start-up). */
  async settle(): Promise<void> {
    clearTimeout(this.#reconcileTimer);
    await this.#runReconcile();
    await this.#leadership;
  }

  /** Stops everything; a leader releases its Lease and detaches its BPF programs. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconcileTimer);
    clearInterval(this.#resyncTimer);
    await this.#reconciling;
    await this.#elector.stop();
    await this.#leadership;
    await this.#setLeading(false);
    await Promise.all([this.#policies.stop(), this.#pods.stop(), this.#peers.stop()]);
    this.#o.log.info("agent stopped", { node: this.#o.nodeName });
  }

  #runReconcile(): Promise<void> {
    if (this.#reconciling) {
      this.#again = true;
      return this.#reconciling;
    }
    this.#reconciling = (async () => {
      try {
        do {
          this.#again = false;
          await this.#reconcile();
        } while (this.#again && !this.#stopped);
      } catch (error) {
        this.#o.log.error("reconcile failed", { error: describe(error) });
      } finally {
        this.#reconciling = undefined;
      }
    })();
    return this.#reconciling;
  }

  async #reconcile(): Promise<void> {
    const { log } = this.#o;
    const policies: KivePolicyV2[] = [];
    const deleting: KivePolicyV2[] = [];
    for (const object of this.#policies.list() as unknown as KivePolicyV2[]) {
      if (object.metadata.deletionTimestamp) {
        deleting.push(object);
        continue;
      }
      const checked = validateSpec("v2alpha1", object.spec);
      if (!checked.ok) {
        log.warn("ignoring invalid KivePolicy", {
          policy: `${object.metadata.namespace}/${object.metadata.name}`,
          problems: formatProblems(checked.problems),
        });
        continue;
      }
      policies.push({ ...object, spec: checked.spec });
    }
    const pods = (this.#pods.list() as unknown as PodObject[])
      .filter((pod) => !pod.metadata?.deletionTimestamp || true)
      .map(podView);
    const desired = computeDesired(policies, pods);
    // Each stage runs on its own: a failure in one (a refused write, a throwing engine) is
    // logged and retried on the next reconcile, and never keeps the later stages from running.
    await this.#stage("plant", () => this.#plant(desired.targets));
    const registrations = [...this.#planted.values()].flatMap((p) =>
      p.registration ? [p.registration] : []
    );
    await this.#stage("publish", () => this.#publish(registrations));
    if (this.#leading) {
      const live = new Set(policies.map((p) => p.metadata.uid ?? ""));
      await this.#stage("kernel", () => this.#syncKernel(registrations, live));
    }
    await this.#stage("status", () => this.#writeStatus(policies, deleting, desired.problems));
    if (this.#o.writesPolicyConditions?.() ?? true) {
      await this.#stage("conditions", () => this.#writeConditions(policies));
    }
    await this.#stage("finalizers", () => this.#releaseFinalizers(deleting));
  }

  async #stage(name: string, run: () => void | Promise<void>): Promise<void> {
    try {
      await run();
    } catch (error) {
      this.#o.log.error(`reconcile stage ${name} failed`, { error: describe(error) });
    }
  }

  async #plant(targets: readonly TrapTarget[]): Promise<void> {
    const now = Date.now();
    const verifyMs = (this.#o.verifySeconds ?? 60) * 1000;
    const next = new Map<string, Planted>();
    try {
      await this.#o.planter.prepare?.(targets);
    } catch (error) {
      this.#o.log.warn("cannot look up container processes", { error: describe(error) });
    }
    for (const target of targets) {
      const previous = this.#planted.get(target.key);
      // The key names (policy, trap index, container); an edited trap under the same index
      // must be planted again.
      const unchanged = previous !== undefined &&
        canonicalJson([previous.target.trap, previous.target.alertVersion]) ===
          canonicalJson([target.trap, target.alertVersion]);
      if (unchanged && previous.outcome.ok && now - previous.checkedAt < verifyMs) {
        next.set(target.key, { ...previous, target });
        continue;
      }
      let result;
      try {
        result = await this.#o.planter.plant(target);
      } catch (error) {
        result = { ok: false as const, reason: "Other", message: describe(error) };
      }
      if (result.ok) {
        const registration: TrapRegistration = {
          dev: result.dev,
          ino: result.ino,
          policy: {
            namespace: target.policy.namespace,
            name: target.policy.name,
            uid: target.policy.uid,
          },
          trapIndex: target.trapIndex,
          path: target.trap.path,
          alertVersion: target.alertVersion,
          metadata: target.trap.metadata ?? {},
          callback: target.trap.callback,
          callbackCABundle: target.trap.callbackCABundle,
          callbackHeadersSecret: target.trap.callbackHeadersFrom?.secretName,
          action: target.trap.action,
          pod: target.pod,
          container: target.container,
          node: this.#o.nodeName,
          cgroupId: result.cgroupId,
        };
        if (!previous?.outcome.ok) {
          this.#o.log.info("trap planted", {
            policy: `${target.policy.namespace}/${target.policy.name}`,
            path: target.trap.path,
            pod: `${target.pod.namespace}/${target.pod.name}`,
            container: target.container.name,
            inode: result.ino,
          });
        }
        next.set(target.key, {
          target,
          outcome: { target, ok: true },
          registration,
          checkedAt: now,
        });
      } else {
        if (
          previous?.outcome.ok !== false ||
          (previous.outcome as { reason: string }).reason !== result.reason
        ) {
          this.#o.log.warn("trap not planted", {
            policy: `${target.policy.namespace}/${target.policy.name}`,
            path: target.trap.path,
            pod: `${target.pod.namespace}/${target.pod.name}`,
            container: target.container.name,
            reason: result.reason,
            message: result.message,
          });
        }
        next.set(target.key, {
          target,
          outcome: { target, ok: false, reason: result.reason, message: result.message },
          checkedAt: now,
        });
      }
    }
    this.#planted = next;
  }

  /** Writes this node's registrations to its ConfigMap for the kernel's leader. */
  async #publish(registrations: readonly TrapRegistration[]): Promise<void> {
    const text = JSON.stringify(registrations);
    if (text === this.#publishedRegistrations) return;
    const { core } = this.#o.apis;
    const chunks = chunkRegistrations(registrations, MAX_CONFIGMAP_BYTES);
    try {
      for (const [index, chunk] of chunks.entries()) {
        const name = `kivebpf-node-${this.#o.nodeName}${index === 0 ? "" : `-${index}`}`;
        const body: V1ConfigMap = {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: {
            name,
            namespace: this.#o.namespace,
            labels: {
              [KERNEL_LABEL]: this.#o.kernelId,
              [NODE_LABEL]: this.#o.nodeName,
              "app.kubernetes.io/name": "kivebpf",
            },
          },
          data: { [REGISTRATIONS_KEY]: chunk },
        };
        await core.patchNamespacedConfigMap(
          {
            name,
            namespace: this.#o.namespace,
            body,
            fieldManager: FIELD_MANAGER_PREFIX,
            force: true,
          },
          setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply),
        );
      }
      // Chunks a larger set needed earlier are deleted only after the new ones are written.
      for (let index = chunks.length; index < this.#publishedChunks; index++) {
        await core.deleteNamespacedConfigMap({
          name: `kivebpf-node-${this.#o.nodeName}-${index}`,
          namespace: this.#o.namespace,
        }).catch((error) => {
          if (apiStatus(error) !== 404) throw error;
        });
      }
      this.#publishedChunks = chunks.length;
      this.#publishedRegistrations = text;
    } catch (error) {
      this.#o.log.warn("cannot publish trap registrations", { error: describe(error) });
    }
  }

  /** Every registration on this kernel: this node's, and its peers' from their ConfigMaps. */
  #kernelRegistrations(own: readonly TrapRegistration[]): TrapRegistration[] {
    const all = [...own];
    for (const object of this.#peers.list() as V1ConfigMap[]) {
      if (object.metadata?.labels?.[NODE_LABEL] === this.#o.nodeName) continue;
      try {
        all.push(...JSON.parse(object.data?.[REGISTRATIONS_KEY] ?? "[]"));
      } catch (error) {
        this.#o.log.warn("unreadable registrations", {
          configMap: object.metadata?.name,
          error: describe(error),
        });
      }
    }
    return all;
  }

  /**
   * Arms every registration of this kernel whose policy is live. Registrations of deleted
   * policies are dropped here at once, also those published by a node whose agent is gone.
   */
  #syncKernel(own: readonly TrapRegistration[], livePolicies: ReadonlySet<string>): void {
    const engine = this.#engine;
    if (!engine) return;
    const all = this.#kernelRegistrations(own).filter((r) => livePolicies.has(r.policy.uid));
    this.#refreshHeaders(all).catch(() => {});
    const result = this.#arms.sync(engine, all);
    this.#recordSyncProblems(result);
    const held = this.#heldEvents;
    this.#heldEvents = null;
    for (const event of held ?? []) this.#onEvent(event);
    const { armed, disarmed } = result;
    if (this.#o.cgroupFilter) this.#applyCgroupFilter(engine, all);
    // The first sync of a leader always says what is armed (an adopted set may need no change).
    if (armed || disarmed || (held && this.#arms.armedInodes > 0)) {
      this.#o.log.info("kernel traps updated", { armed, disarmed, inodes: this.#arms.armedInodes });
      this.#o.log.debug("kernel registrations", {
        registrations: all.map((r) => `${r.node}:${r.pod.name}:${r.path}:${r.dev}:${r.ino}`),
      });
    }
    this.#o.metrics?.trapsArmed.set({}, this.#arms.armedInodes);
  }

  /** Logs what the kernel refused (each item named) and keeps this node's share for status. */
  #recordSyncProblems(result: SyncResult): void {
    const failures = new Map<string, string>();
    for (const { registrations, error, op } of result.failed) {
      const message = describe(error);
      for (const r of registrations) {
        const key = registrationKey(r);
        // A failed disarm leaves the inode armed: only failed arms are gaps in status.
        if (op === "arm" && r.node === this.#o.nodeName) failures.set(key, message);
        if (this.#armFailures.get(key) !== message) {
          this.#o.log.error(`cannot ${op} trap in the kernel`, {
            policy: `${r.policy.namespace}/${r.policy.name}`,
            path: r.path,
            pod: `${r.pod.namespace}/${r.pod.name}`,
            container: r.container.name,
            node: r.node,
            error: message,
          });
        }
      }
    }
    const notEnforced = new Set<string>();
    for (const r of result.blockNotEnforced) {
      const key = registrationKey(r);
      if (r.node === this.#o.nodeName) notEnforced.add(key);
      if (!this.#blockNotEnforced.has(key)) {
        this.#o.log.warn("block not enforced: this backend can only alert", {
          policy: `${r.policy.namespace}/${r.policy.name}`,
          path: r.path,
          pod: `${r.pod.namespace}/${r.pod.name}`,
          backend: this.#engine?.backend,
        });
      }
    }
    this.#armFailures = failures;
    this.#blockNotEnforced = notEnforced;
  }

  /**
   * Status problems for this node's block traps that are armed to alert only. (Traps the
   * kernel refused are reported as not armed in their plant outcome instead.)
   */
  #blockProblems(): TrapProblem[] {
    const problems: TrapProblem[] = [];
    for (const { target, registration } of this.#planted.values()) {
      if (registration && this.#blockNotEnforced.has(registrationKey(registration))) {
        problems.push({
          policy: target.policy,
          trapIndex: target.trapIndex,
          path: target.trap.path,
          pod: { namespace: target.pod.namespace, name: target.pod.name },
          container: target.container.name,
          reason: REASON_BLOCK_NOT_ENFORCED,
          message: `the ${
            this.#engine?.backend ?? "active"
          } backend cannot deny opens: accesses are reported, not blocked (block needs lsm)`,
        });
      }
    }
    return problems;
  }

  #applyCgroupFilter(engine: TrapEngine, registrations: readonly TrapRegistration[]): void {
    const complete = registrations.length > 0 && registrations.every((r) => r.cgroupId);
    const wanted = complete ? [...new Set(registrations.map((r) => r.cgroupId!))].sort() : null;
    const current = engine.cgroupFilter()?.map(String).sort() ?? null;
    if (JSON.stringify(wanted) === JSON.stringify(current)) return;
    engine.setCgroupFilter(wanted?.map(BigInt) ?? null);
    this.#o.log.info("cgroup prefilter updated", {
      cgroups: wanted?.length ?? "off (a trap's cgroup v2 id is unknown)",
    });
  }

  async #setLeading(leading: boolean): Promise<void> {
    if (leading === this.#leading) return;
    const { log, kernelId, metrics } = this.#o;
    if (leading) {
      if (this.#stopped) return;
      let engine: TrapEngine;
      try {
        engine = await this.#o.openEngine();
      } catch (error) {
        log.error("cannot load BPF programs; giving up the lease", { error: describe(error) });
        await this.#elector.stop();
        this.#stopped || setTimeout(() => this.#elector.start(), 10_000);
        return;
      }
      this.#engine = engine;
      this.#leading = true;
      // Events are held until the first kernel sync has attached registrations to the
      // (possibly adopted) trap ids: what accumulated while no agent read must route.
      this.#heldEvents = [];
      log.info("leading kernel", {
        kernelId,
        backend: engine.backend,
        programs: engine.programs,
        pinned: engine.pins?.mapsDir,
      });
      if (engine.pinError) {
        log.warn("BPF objects not pinned: traps go dark while no agent runs", {
          reason: engine.pinError,
        });
      }
      if (engine.pins?.adoptedMaps) {
        const armed = engine.armed();
        this.#arms.adopt(armed);
        log.info("adopted the pinned traps of a previous leader", {
          inodes: armed.length,
          links: engine.pins.adoptedLinks ? "adopted" : "replaced",
        });
      }
      metrics?.leader.set({ kernel_id: kernelId }, 1);
      metrics?.backendInfo.set({ backend: engine.backend }, 1);
      this.#engineLoop = this.#readEvents(engine);
      this.schedule(0);
    } else {
      this.#leading = false;
      metrics?.leader.set({ kernel_id: kernelId }, 0);
      const engine = this.#engine;
      this.#engine = undefined;
      // A last stop with nothing armed (policies deleted, kivebpf being removed) leaves
      // nothing in the kernel; otherwise the pins keep the traps armed for the successor.
      const pinRoot = engine?.pins?.root;
      if (engine && pinRoot && this.#stopped && this.#arms.armedInodes === 0) {
        try {
          engine.unpin();
          log.info("no trap left: removed the pinned BPF objects", { dir: pinRoot });
        } catch (error) {
          log.warn("cannot remove the pinned BPF objects", { error: describe(error) });
        }
      }
      // What the kernel refused was this engine's verdict; a follower has none to report.
      this.#armFailures.clear();
      this.#blockNotEnforced.clear();
      if (engine) {
        // The events read before the close still route: the trap ids are forgotten after.
        await engine.close();
        await this.#engineLoop;
        log.info("stopped leading kernel", { kernelId });
      }
      this.#arms.reset();
      this.#heldEvents = null;
    }
  }

  async #readEvents(engine: TrapEngine): Promise<void> {
    try {
      for await (const event of engine.events()) this.#onEvent(event);
    } catch (error) {
      if (!engine.closed) this.#o.log.error("event stream failed", { error: describe(error) });
    }
  }

  #onEvent(event: EngineEvent): void {
    if (this.#heldEvents) {
      if (this.#heldEvents.length < MAX_HELD_EVENTS) this.#heldEvents.push(event);
      else this.#o.metrics?.eventsLost.inc({}, event.count);
      return;
    }
    const { log, metrics, output, kernelId } = this.#o;
    if (event.kind === "lost") {
      metrics?.eventsLost.inc({}, event.count);
      for (const registration of this.#arms.registrationsOf(event.trapId)) {
        // A summary in the alert's own shape, so whoever reads alerts learns of the loss too.
        const body = buildLossAlert(registration, kernelId, event.count);
        log.warn("accesses lost: the kernel ring buffer was full", {
          policy: `${registration.policy.namespace}/${registration.policy.name}`,
          path: registration.path,
          lost: event.count,
        });
        output.deliver({
          id: `${kernelId}-lost-${event.trapId}-${++this.#alertSeq}`,
          body,
          policy: { name: registration.policy.name, namespace: registration.policy.namespace },
          callback: this.#callbackOf(registration),
        });
      }
      return;
    }
    if (event.count > 1) metrics?.eventsAggregated.inc({}, event.count - 1);
    const routed = this.#arms.route(event, this.#o.planter.containerOf?.bind(this.#o.planter));
    if (routed.length === 0) {
      log.debug("event for a trap no longer armed", { dev: event.dev, ino: event.ino });
      return;
    }
    for (const registration of routed) {
      // The same access always gets the same id (the kernel's event, the trap), so that a
      // receiver can drop the duplicates two agents send around a takeover.
      const id = `${kernelId}-${event.bootNs}-${event.tgid}-${event.pid}-` +
        `${registration.policy.uid}-${registration.trapIndex}`;
      const body = buildAlert(event, registration, kernelId, id);
      output.deliver({
        id,
        body: body.KiveAlert as Record<string, unknown>,
        policy: { name: registration.policy.name, namespace: registration.policy.namespace },
        callback: this.#callbackOf(registration),
      });
      this.#podEvent(event, registration);
    }
  }

  /**
   * The callback target of a registration, with headers from its Secret when it names one.
   * Headers come from a cache refreshed in the background: an alert never waits for the API.
   */
  #callbackOf(registration: TrapRegistration): Alert["callback"] {
    if (!registration.callback) return undefined;
    const target: NonNullable<Alert["callback"]> = { url: registration.callback };
    if (registration.callbackCABundle) target.caBundle = registration.callbackCABundle;
    if (registration.callbackHeadersSecret) {
      target.headers = this.#headers.get(registration.callbackHeadersSecret);
    }
    return target;
  }

  /**
   * Loads the callback header Secrets the registrations name. Only Secrets in the agent's own
   * namespace that carry the label {@linkcode HEADERS_LABEL} are used, so a policy cannot make
   * the agent send other Secrets (its own TLS key, say) to a URL the policy chose.
   */
  async #refreshHeaders(registrations: readonly TrapRegistration[]): Promise<void> {
    const names = new Set(
      registrations.flatMap((r) => r.callbackHeadersSecret ? [r.callbackHeadersSecret] : []),
    );
    for (const name of this.#headers.keys()) if (!names.has(name)) this.#headers.delete(name);
    for (const name of names) {
      try {
        const secret = await this.#o.apis.core.readNamespacedSecret({
          name,
          namespace: this.#o.namespace,
        });
        if (secret.metadata?.labels?.[HEADERS_LABEL] !== "true") {
          this.#o.log.warn("callback header Secret ignored: it lacks the label", {
            secret: name,
            label: `${HEADERS_LABEL}=true`,
          });
          this.#headers.delete(name);
          continue;
        }
        const headers: Record<string, string> = {};
        for (const [key, value] of Object.entries(secret.data ?? {})) headers[key] = atob(value);
        for (const [key, value] of Object.entries(secret.stringData ?? {})) headers[key] = value;
        this.#headers.set(name, headers);
      } catch (error) {
        this.#o.log.warn("cannot read callback header Secret", {
          secret: name,
          error: describe(error),
        });
      }
    }
  }

  #podEvent(event: AccessEvent, registration: TrapRegistration): void {
    const api = this.#o.apis.events;
    if (!api) return;
    const key = `${registration.pod.namespace}/${registration.pod.name}`;
    const now = Date.now();
    if (now - (this.#lastPodEvent.get(key) ?? 0) < (this.#o.podEventSeconds ?? 10) * 1000) return;
    this.#lastPodEvent.set(key, now);
    const time = new V1MicroTime();
    api.createNamespacedEvent({
      namespace: registration.pod.namespace,
      body: {
        metadata: { generateName: `${registration.pod.name}.kivebpf-` },
        eventTime: time,
        reportingController: `${GROUP}/agent`,
        reportingInstance: this.#o.nodeName,
        action: "Access",
        reason: "TrapAccessed",
        type: "Warning",
        note:
          `${event.comm} (pid ${event.tgid}, uid ${event.uid}) accessed trap ${registration.path} ` +
          `of KivePolicy ${registration.policy.namespace}/${registration.policy.name}`.slice(
            0,
            1024,
          ),
        regarding: {
          apiVersion: "v1",
          kind: "Pod",
          name: registration.pod.name,
          namespace: registration.pod.namespace,
          uid: registration.pod.uid,
        },
      },
    }).catch((error) => this.#o.log.debug("cannot create pod event", { error: describe(error) }));
  }

  async #writeStatus(
    policies: readonly KivePolicyV2[],
    deleting: readonly KivePolicyV2[],
    problems: Parameters<typeof nodeStatusEntries>[4],
  ): Promise<void> {
    const entries = nodeStatusEntries(
      this.#o.nodeName,
      this.#o.kernelId,
      this.#engine?.backend,
      [...this.#planted.values()].map((p) => {
        // Planted is not armed: a trap the kernel refused is reported as not armed.
        const failure = p.registration && this.#armFailures.get(registrationKey(p.registration));
        return failure === undefined || !p.outcome.ok ? p.outcome : {
          target: p.target,
          ok: false as const,
          reason: REASON_ARM_FAILED,
          message: failure,
        };
      }),
      [...problems, ...this.#blockProblems()],
    );
    const live = new Set(policies.map((p) => p.metadata.uid ?? ""));
    const targets = new Map<string, { namespace: string; name: string; status: unknown }>();
    for (const [uid, { policy, entry }] of entries) {
      if (live.has(uid)) {
        targets.set(uid, {
          namespace: policy.namespace,
          name: policy.name,
          status: { nodes: [entry] },
        });
      }
    }
    // Policies this node reported on before but no longer matches, or that are being deleted:
    // apply an empty status to drop this node's entry.
    for (const policy of [...policies, ...deleting]) {
      const uid = policy.metadata.uid ?? "";
      if (!targets.has(uid) && this.#appliedStatus.has(uid) || policy.metadata.deletionTimestamp) {
        if (!targets.has(uid)) {
          targets.set(uid, {
            namespace: policy.metadata.namespace ?? "",
            name: policy.metadata.name ?? "",
            status: undefined,
          });
        }
      }
    }
    for (const uid of this.#appliedStatus.keys()) {
      if (!live.has(uid) && !deleting.some((p) => p.metadata.uid === uid)) {
        this.#appliedStatus.delete(uid);
      }
    }
    for (const [uid, { namespace, name, status }] of targets) {
      const text = JSON.stringify(status ?? null);
      if (this.#appliedStatus.get(uid) === text) continue;
      const body: Record<string, unknown> = {
        apiVersion: `${GROUP}/v2alpha1`,
        kind: "KivePolicy",
        metadata: { name, namespace, uid },
      };
      if (status) body.status = status;
      try {
        await this.#applyStatus(
          namespace,
          name,
          body,
          `${FIELD_MANAGER_PREFIX}-${this.#o.nodeName}`,
        );
        this.#appliedStatus.set(uid, text);
      } catch (error) {
        if (apiStatus(error) === 404 || apiStatus(error) === 409) continue;
        this.#o.log.warn("cannot update KivePolicy status", {
          policy: `${namespace}/${name}`,
          error: describe(error),
        });
      }
    }
  }

  /** Server-side applies a KivePolicy status with one field manager, taking over its fields. */
  async #applyStatus(
    namespace: string,
    name: string,
    body: Record<string, unknown>,
    fieldManager: string,
  ): Promise<void> {
    await this.#o.apis.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: "v2alpha1",
        namespace,
        plural: PLURAL,
        name,
        body,
        fieldManager,
        force: true,
      },
      setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply),
    );
  }

  /**
   * Sums the nodes' entries into `status.armed` and the `Ready` condition, applied with a field
   * manager of its own so it never touches the nodes' entries.
   */
  async #writeConditions(policies: readonly KivePolicyV2[]): Promise<void> {
    for (const policy of policies) {
      const nodes = policy.status?.nodes ?? [];
      const armed = nodes.reduce((sum, node) => sum + node.armed, 0);
      const allProblems = nodes.flatMap((node) =>
        (node.traps ?? []).flatMap((trap) => trap.problems ?? [])
      );
      // A block that is not enforced is still armed (to alert): a warning, not a gap.
      const problems = allProblems.filter((p) => p.reason !== REASON_BLOCK_NOT_ENFORCED);
      const blockNotEnforced = allProblems.length > problems.length;
      const reasons = [...new Set(problems.map((p) => p.reason))].join(", ");
      const [status, reason, message] = armed === 0 && problems.length === 0
        ? ["False", "NoMatch", "no running container matches the policy"]
        : armed === 0
        ? ["False", "NotArmed", `no container armed: ${reasons}`]
        : problems.length > 0
        ? [
          "False",
          "PartiallyArmed",
          `${armed} container(s) armed on ${nodes.length} node(s); not armed: ${reasons}`,
        ]
        : [
          "True",
          "Armed",
          `${armed} container(s) armed on ${nodes.length} node(s)${
            blockNotEnforced ? "; block not enforced on some (alert only)" : ""
          }`,
        ];
      const current = policy.status?.conditions?.find((c) => c.type === "Ready");
      if (
        current?.status === status && current.reason === reason && current.message === message &&
        current.observedGeneration === policy.metadata.generation && policy.status?.armed === armed
      ) continue;
      const condition = {
        type: "Ready",
        status,
        reason,
        message,
        observedGeneration: policy.metadata.generation,
        lastTransitionTime: current?.status === status && current.lastTransitionTime
          ? current.lastTransitionTime
          : rfc3339Seconds(BigInt(Date.now()) * 1_000_000n),
      };
      try {
        const { name, namespace } = policy.metadata;
        await this.#applyStatus(namespace ?? "", name ?? "", {
          apiVersion: `${GROUP}/v2alpha1`,
          kind: "KivePolicy",
          metadata: { name, namespace },
          status: {
            armed,
            observedGeneration: policy.metadata.generation,
            conditions: [condition],
          },
        }, `${FIELD_MANAGER_PREFIX}-conditions`);
      } catch (error) {
        if (apiStatus(error) !== 404) {
          this.#o.log.warn("cannot update KivePolicy conditions", { error: describe(error) });
        }
      }
    }
  }

  /**
   * Whether no other node can still have the policy armed: each other node's status entry is
   * on this kernel, which this agent leads and has just disarmed, or on a kernel whose Lease
   * has expired, whose BPF programs died with their agent.
   */
  async #othersDisarmed(policy: KivePolicyV2): Promise<boolean> {
    for (const entry of policy.status?.nodes ?? []) {
      if (entry.node === this.#o.nodeName) continue;
      if (entry.kernelId === this.#o.kernelId && this.#leading) continue;
      if (entry.kernelId && !(await this.#kernelLeaseLive(entry.kernelId))) continue;
      return false;
    }
    return true;
  }

  async #kernelLeaseLive(kernelId: string): Promise<boolean> {
    try {
      const lease = await this.#o.apis.coordination.readNamespacedLease({
        name: `kivebpf-kernel-${kernelId}`,
        namespace: this.#o.namespace,
      });
      const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
      const duration = (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
      // Twice the duration: tolerate clock skew between nodes rather than release early.
      return Boolean(lease.spec?.holderIdentity) && Date.now() - renewed < 2 * duration;
    } catch (error) {
      return apiStatus(error) !== 404;
    }
  }

  /**
   * Removes our finalizer from a policy being deleted once no node reports traps for it any
   * more (each node drops its status entry after disarming).
   */
  async #releaseFinalizers(deleting: readonly KivePolicyV2[]): Promise<void> {
    for (const policy of deleting) {
      const finalizers = policy.metadata.finalizers ?? [];
      if (!finalizers.includes(FINALIZER)) continue;
      const uid = policy.metadata.uid ?? "";
      if ([...this.#planted.values()].some((p) => p.target.policy.uid === uid)) continue;
      if (!(await this.#othersDisarmed(policy))) continue;
      try {
        await this.#o.apis.custom.patchNamespacedCustomObject(
          {
            group: GROUP,
            version: "v2alpha1",
            namespace: policy.metadata.namespace ?? "",
            plural: PLURAL,
            name: policy.metadata.name ?? "",
            body: [
              { op: "test", path: "/metadata/uid", value: uid },
              {
                op: "replace",
                path: "/metadata/finalizers",
                value: finalizers.filter((f) => f !== FINALIZER),
              },
            ],
          },
          setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
        );
        this.#o.log.info("policy disarmed; finalizer removed", {
          policy: `${policy.metadata.namespace}/${policy.metadata.name}`,
        });
      } catch (error) {
        if (apiStatus(error) !== 404 && apiStatus(error) !== 422) {
          this.#o.log.warn("cannot remove finalizer", { error: describe(error) });
        }
      }
    }
  }
}

/** Status reason: the trap file is planted, but the kernel refused to arm its inode. */
export const REASON_ARM_FAILED = "ArmFailed";
/** Events held before the first kernel sync of a new leader, at most (then counted lost). */
const MAX_HELD_EVENTS = 65536;
/** Status reason: a `block` trap is armed to alert only; the backend cannot deny opens. */
export const REASON_BLOCK_NOT_ENFORCED = "BlockNotEnforced";

function registrationKey(r: TrapRegistration): string {
  return `${r.policy.uid}/${r.trapIndex}/${r.pod.uid}/${r.container.name}/${r.dev}:${r.ino}`;
}

/** A one-line description of an error, including an API error's message. */
export function describe(error: unknown): string {
  const body = (error as { body?: unknown })?.body;
  if (body) {
    try {
      const parsed = typeof body === "string" ? JSON.parse(body) : body;
      if (parsed?.message) return `${(error as Error).message ?? "API error"}: ${parsed.message}`;
    } catch {
      // not JSON
    }
  }
  return error instanceof Error ? error.message : String(error);
}
