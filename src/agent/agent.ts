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
import type {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  KubernetesListObject,
  KubernetesObject,
} from "@kubernetes/client-node";
import {
  canonicalJson,
  formatProblems,
  GROUP,
  type KivePolicyV2,
  PLURAL,
  validateSpec,
} from "../api/mod.ts";
import type { AccessEvent, TrapEngine } from "../engine/mod.ts";
import { LeaseElector, ResourceWatcher } from "../kube/mod.ts";
import type { AgentMetrics } from "../delivery/mod.ts";
import type { TrapRegistration } from "./alert.ts";
import { type AlertOutput, AlertRouter } from "./alert_router.ts";
import {
  PolicyStatusWriter,
  REASON_ARM_FAILED,
  REASON_BLOCK_NOT_ENFORCED,
} from "./policy_status.ts";
import {
  computeDesired,
  type PodObject,
  podView,
  type TrapProblem,
  type TrapTarget,
} from "./desired.ts";
import { type HealthReport, HeartbeatTracker } from "./health.ts";
import { KernelArms, type SyncResult } from "./kernel_arms.ts";
import type { Logger } from "./log.ts";
import { KERNEL_LABEL, peerRegistrations, RegistrationPublisher } from "./registrations.ts";
import { nodeStatusEntries, type PlantOutcome } from "./status.ts";

export {
  chunkRegistrations,
  KERNEL_LABEL,
  MAX_CONFIGMAP_BYTES,
  NODE_LABEL,
} from "./registrations.ts";
export { HEADERS_LABEL } from "./alert_router.ts";

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

export type { AlertOutput } from "./alert_router.ts";

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
  readonly #publisher: RegistrationPublisher;
  readonly #status: PolicyStatusWriter;
  #reconcileTimer?: ReturnType<typeof setTimeout>;
  #resyncTimer?: ReturnType<typeof setInterval>;
  #reconciling?: Promise<void>;
  #startedAt?: number;
  #reconcileStartedAt?: number;
  #reconcileEndedAt?: number;
  readonly #readerHeartbeat = new HeartbeatTracker();
  #again = false;
  #stopped = false;
  #leading = false;
  #leadership: Promise<void> = Promise.resolve();
  readonly #alerts: AlertRouter;
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
    this.#publisher = new RegistrationPublisher({
      core,
      nodeName: options.nodeName,
      namespace: options.namespace,
      kernelId: options.kernelId,
      log: options.log,
      describe,
    });
    this.#status = new PolicyStatusWriter({
      nodeName: options.nodeName,
      kernelId: options.kernelId,
      namespace: options.namespace,
      custom,
      coordination: options.apis.coordination,
      log: options.log,
      describe,
    });
    this.#alerts = new AlertRouter({
      kernelId: options.kernelId,
      nodeName: options.nodeName,
      namespace: options.namespace,
      log: options.log,
      metrics: options.metrics,
      output: options.output,
      core,
      events: options.apis.events,
      containerOf: options.planter.containerOf?.bind(options.planter),
      podEventSeconds: options.podEventSeconds,
    }, this.#arms);
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

  /**
   * What `/readyz` and `/healthz` judge: watch sync, the kernel's leader, the reconcile loop's
   * progress and, while leading, the event reader's heartbeat.
   *
   * @param now The time of the sample.
   * @returns The report that health.ts judges (readiness and liveness).
   */
  healthReport(now = Date.now()): HealthReport {
    const engine = this.#leading ? this.#engine : undefined;
    return {
      now,
      watches: [
        { name: "kivepolicies", synced: this.#policies.synced },
        { name: "pods", synced: this.#pods.synced },
        { name: "registrations", synced: this.#peers.synced },
      ],
      leaderKnown: this.#elector.leaderKnown,
      reconcileStartedAt: this.#reconcileStartedAt,
      reconcileEndedAt: this.#reconcileEndedAt,
      startedAt: this.#startedAt,
      readerMovedAt: this.#readerHeartbeat.sample(
        engine && !engine.closed ? engine.readerBeats : undefined,
        now,
      ),
    };
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
    this.#startedAt = Date.now();
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
          // Per pass: a stream of events may chain passes, each of which must still end.
          this.#reconcileStartedAt = Date.now();
          this.#again = false;
          await this.#reconcile();
        } while (this.#again && !this.#stopped);
      } catch (error) {
        this.#o.log.error("reconcile failed", { error: describe(error) });
      } finally {
        this.#reconciling = undefined;
        this.#reconcileStartedAt = undefined;
        this.#reconcileEndedAt = Date.now();
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
    await this.#stage("publish", () => this.#publisher.publish(registrations));
    if (this.#leading) {
      const live = new Set(policies.map((p) => p.metadata.uid ?? ""));
      await this.#stage("kernel", () => this.#syncKernel(registrations, live));
    }
    await this.#stage("status", () => this.#writeStatus(policies, deleting, desired.problems));
    if (this.#o.writesPolicyConditions?.() ?? true) {
      await this.#stage("conditions", () => this.#status.writeConditions(policies));
    }
    const plantedPolicies = new Set([...this.#planted.values()].map((p) => p.target.policy.uid));
    await this.#stage(
      "finalizers",
      () => this.#status.releaseFinalizers(deleting, { plantedPolicies, leading: this.#leading }),
    );
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
  /** Every registration on this kernel: this node's, and its peers' from their ConfigMaps. */
  #kernelRegistrations(own: readonly TrapRegistration[]): TrapRegistration[] {
    return [...own, ...peerRegistrations(this.#peers.list(), this.#o.nodeName, this.#o.log)];
  }

  /**
   * Arms every registration of this kernel whose policy is live. Registrations of deleted
   * policies are dropped here at once, also those published by a node whose agent is gone.
   */
  #syncKernel(own: readonly TrapRegistration[], livePolicies: ReadonlySet<string>): void {
    const engine = this.#engine;
    if (!engine) return;
    const all = this.#kernelRegistrations(own).filter((r) => livePolicies.has(r.policy.uid));
    this.#alerts.refreshHeaders(all).catch(() => {});
    const result = this.#arms.sync(engine, all);
    this.#recordSyncProblems(result);
    const firstSync = this.#alerts.holding;
    this.#alerts.release();
    const { armed, disarmed } = result;
    if (this.#o.cgroupFilter) this.#applyCgroupFilter(engine, all);
    // The first sync of a leader always says what is armed (an adopted set may need no change).
    if (armed || disarmed || (firstSync && this.#arms.armedInodes > 0)) {
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
      this.#alerts.hold();
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
      this.#engineLoop = this.#alerts.run(engine);
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
      this.#alerts.drop();
    }
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
    await this.#status.writeNodeStatus(entries, policies, deleting);
  }
}

export { REASON_ARM_FAILED, REASON_BLOCK_NOT_ENFORCED } from "./policy_status.ts";

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
