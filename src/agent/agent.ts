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
import type { KubernetesObject } from "@kubernetes/client-node";
import type { KivePolicyV2 } from "../api/mod.ts";
import type { LeaseElector, ResourceWatcher } from "../kube/mod.ts";
import type { NodeAgentOptions } from "./agent_options.ts";
import { agentParts, kernelLease } from "./agent_parts.ts";
import type { TrapRegistration } from "./alert.ts";
import type { NodeReportWriter } from "./node_reports.ts";
import type { PolicyStatusWriter } from "./policy_status.ts";
import { PolicyTotals } from "./policy_totals.ts";
import { computeDesired, type PodObject, podView, type TrapTarget } from "./desired.ts";
import { type HealthReport, HeartbeatTracker } from "./health.ts";
import { KernelArms } from "./kernel_arms.ts";
import type { KernelLeader } from "./kernel_leader.ts";
import {
  type ArmedSetPublisher,
  kernelOutcome,
  type KernelView,
  readArmedSet,
} from "./armed_set.ts";
import { describe } from "./describe.ts";
import { agentWatches } from "./watches.ts";
import { PassTimer } from "./pass_timer.ts";
import { takeInPolicies } from "./policy_intake.ts";
import { type Planted, plantTargets } from "./planting.ts";
import {
  handOverAction,
  kernelShared,
  peerRegistrations,
  type RegistrationPublisher,
} from "./registrations.ts";
import { nodeStatusEntries } from "./status.ts";
import { addSignals, type TrapChangeReporter, type TrapSignals } from "./trap_changes.ts";

export {
  chunkRegistrations,
  KERNEL_LABEL,
  MAX_CONFIGMAP_BYTES,
  NODE_LABEL,
} from "./registrations.ts";
export { HEADERS_LABEL } from "./callback_headers.ts";

export type { AgentApis, NodeAgentOptions, TrapPlanter } from "./agent_options.ts";
export type { AlertOutput } from "./alert_router.ts";

/** Wait after a trap file's first watch signal before verifying it. */
const SIGNAL_SETTLE_MS = 300;

/** Runs the agent of one node. */
export class NodeAgent {
  readonly #o: NodeAgentOptions;
  readonly #policies: ResourceWatcher<KubernetesObject>;
  readonly #pods: ResourceWatcher<KubernetesObject>;
  readonly #peers: ResourceWatcher<KubernetesObject>;
  readonly #elector: LeaseElector;
  readonly #arms = new KernelArms();
  #planted = new Map<string, Planted>();
  readonly #kernel: KernelLeader;
  readonly #armedSet: ArmedSetPublisher;
  readonly #publisher: RegistrationPublisher;
  readonly #status: PolicyStatusWriter;
  readonly #reports: NodeReportWriter;
  readonly #totals: PolicyTotals;
  readonly #passTimer = new PassTimer(() => this.#runReconcile());
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
  readonly #changes: TrapChangeReporter;
  /** Watch signals of trap files not yet acted on, by target key. */
  #signals = new Map<string, TrapSignals>();
  #lastSignalPass = 0;
  /** Uids of stored policies refused by today's rules (logged once each). */
  #invalid = new Set<string>();

  /**
   * Prepares the agent; it watches, plants and arms nothing until started.
   *
   * @param options Node, clients, ports and timings.
   */
  constructor(options: NodeAgentOptions) {
    this.#o = options;
    const parts = agentParts(options, this.#arms);
    this.#publisher = parts.publisher;
    this.#status = parts.status;
    this.#kernel = parts.kernel;
    this.#armedSet = parts.armedSet;
    this.#changes = parts.changes;
    this.#reports = parts.reports;
    options.planter.onSignals?.((signals) => {
      addSignals(this.#signals, signals);
      // One syscall's events (an unlink: link count, name, last link) may straddle two reads:
      // a short settle lets them all arrive before the verdict. At most one pass a second for
      // a container that keeps renaming its trap.
      this.schedule(Math.max(SIGNAL_SETTLE_MS, this.#lastSignalPass + 1000 - Date.now()));
    });
    const watches = options.watches ?? agentWatches(options, () => this.schedule());
    this.#policies = watches.policies;
    this.#pods = watches.pods;
    this.#peers = watches.peers;
    this.#totals = new PolicyTotals(watches.reports, this.#status, options.log, {
      later: (ms) => this.schedule(ms),
    });
    this.#elector = kernelLease(options, (leading) => {
      this.#leadership = this.#leadership.then(() => this.#setLeading(leading));
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
    const engine = this.#leading ? this.#kernel.engine : undefined;
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
    return this.#kernel.engine?.backend;
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
    this.#passTimer.schedule(delayMs);
  }

  /** Waits until a reconcile has run from the current caches (tests, start-up). */
  async settle(): Promise<void> {
    this.#passTimer.cancel();
    await this.#runReconcile();
    await this.#leadership;
  }

  /** Stops everything; a leader releases its Lease and detaches its BPF programs. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#passTimer.cancel();
    clearInterval(this.#resyncTimer);
    await this.#reconciling;
    // The reader stops before the Lease is released: a successor that took the Lease at once
    // would read the pinned ring buffer while this one still did, and two consumers of one
    // ring lose records (the upgrade chaos test: 300 of 301 delivered).
    await this.#leadership;
    await this.#setLeading(false);
    await this.#elector.stop();
    await this.#leadership;
    await Promise.all([
      this.#policies.stop(),
      this.#pods.stop(),
      this.#peers.stop(),
      this.#totals.stop(),
    ]);
    this.#o.planter.close?.();
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
    const { live: policies, deleting, invalid } = takeInPolicies(
      this.#policies.list() as unknown as KivePolicyV2[],
      this.#invalid,
      this.#o.log,
    );
    this.#invalid = new Set(invalid.keys());
    const pods = (this.#pods.list() as unknown as PodObject[]).map(podView);
    const desired = computeDesired(policies, pods);
    // Each stage runs on its own: a failure in one (a refused write, a throwing engine) is
    // logged and retried on the next reconcile, and never keeps the later stages from running.
    await this.#stage("plant", () => this.#plant(desired.targets));
    // Moved-away trap inodes stay armed beside the one at the path.
    const registrations = [...this.#planted.values()].flatMap((p) =>
      p.registration ? [p.registration, ...p.retained] : p.retained
    );
    await this.#stage("publish", () => this.#handOver(registrations));
    if (this.#leading) {
      const live = new Set(policies.map((p) => p.metadata.uid ?? ""));
      await this.#stage("kernel", () => this.#syncKernel(registrations, live));
    }
    await this.#stage("status", () => this.#writeStatus(policies, desired.problems));
    await this.#stage("conditions", () =>
      this.#totals.pass(
        this.#o.writesPolicyConditions?.() ?? true,
        [...policies, ...[...invalid.values()].map((i) => i.policy)],
        new Map([...invalid].map(([uid, i]) => [uid, i.problems])),
      ));
    const plantedPolicies = new Set([...this.#planted.values()].map((p) => p.target.policy.uid));
    // Released by the agent that watches the reports (from its cache): one agent, not every
    // node listing the reports of each policy being deleted.
    if (this.#totals.synced) {
      await this.#stage("finalizers", () =>
        this.#status.releaseFinalizers(
          deleting,
          { plantedPolicies, leading: this.#leading },
          (uid) => this.#totals.reportsOf(uid),
        ));
    }
  }

  async #stage(name: string, run: () => void | Promise<void>): Promise<void> {
    try {
      await run();
    } catch (error) {
      this.#o.log.error(`reconcile stage ${name} failed`, { error: describe(error) });
    }
  }

  async #plant(targets: readonly TrapTarget[]): Promise<void> {
    const signals = this.#signals;
    this.#signals = new Map();
    if (signals.size > 0) this.#lastSignalPass = Date.now();
    this.#planted = await plantTargets(this.#planted, targets, {
      planter: this.#o.planter,
      log: this.#o.log,
      nodeName: this.#o.nodeName,
      verifyMs: (this.#o.verifySeconds ?? 60) * 1000,
      signals,
      onChange: (target, change) => this.#changes.report(target, change),
    });
  }

  /**
   * Hands this node's registrations to its kernel's leader through ConfigMaps, where another
   * agent shares the kernel (kind, nested clusters): a follower always, the leader too so that
   * a successor can arm its node's traps. A leader alone on its kernel, the common case, writes
   * none. Nothing is decided before the Lease has been read.
   */
  #handOver(registrations: readonly TrapRegistration[]): Promise<void> {
    const action = handOverAction({
      leaderKnown: this.#elector.leaderKnown,
      leading: this.#leading,
      shared: kernelShared(this.#peers.list(), this.#o.nodeName),
    });
    if (action === "publish") return this.#publisher.publish(registrations);
    return action === "withdraw" ? this.#publisher.withdraw() : Promise.resolve();
  }

  /**
   * Arms every registration of this kernel whose policy is live: this node's, and its peers'
   * from their ConfigMaps. Registrations of deleted policies are dropped here at once, also
   * those published by a node whose agent is gone.
   */
  async #syncKernel(
    own: readonly TrapRegistration[],
    livePolicies: ReadonlySet<string>,
  ): Promise<void> {
    const peers = peerRegistrations(this.#peers.list(), this.#o.nodeName, this.#o.log);
    this.#kernel.sync([...own, ...peers].filter((r) => livePolicies.has(r.policy.uid)));
    // Followers on this kernel learn what is armed; with none, no write is spent.
    if (peers.length > 0) await this.#armedSet.publish(this.#arms.armedKeys());
  }

  async #setLeading(leading: boolean): Promise<void> {
    if (leading === this.#leading) return;
    if (leading) {
      if (this.#stopped) return;
      this.#armedSet.reset();
      if (!(await this.#kernel.start())) {
        await this.#elector.stop();
        this.#stopped || setTimeout(() => this.#elector.start(), 10_000);
        return;
      }
      this.#leading = true;
      this.schedule(0);
    } else {
      this.#leading = false;
      await this.#kernel.stop(this.#stopped);
    }
  }

  async #writeStatus(
    policies: readonly KivePolicyV2[],
    problems: Parameters<typeof nodeStatusEntries>[4],
  ): Promise<void> {
    // Planted is not armed: status shows what the kernel's leader armed.
    const view: KernelView = {
      leading: this.#leading,
      leaderKnown: this.#elector.leaderKnown,
      armFailure: (r) => this.#kernel.armFailure(r),
      armedSet: this.#leading ? undefined : readArmedSet(this.#peers.list(), this.#o.log),
    };
    const entries = nodeStatusEntries(
      this.#o.nodeName,
      this.#o.kernelId,
      this.#kernel.engine?.backend,
      [...this.#planted.values()].map((p) => kernelOutcome(p.outcome, p.registration, view)),
      [...problems, ...this.#kernel.blockProblems(this.#planted.values())],
      [...this.#planted.values()].flatMap((p) =>
        p.changes.map((change) => ({ target: p.target, change }))
      ),
    );
    await this.#reports.write(entries, policies);
  }
}

export {
  REASON_ARM_FAILED,
  REASON_BLOCK_NOT_ENFORCED,
  REASON_NO_KERNEL_LEADER,
  REASON_NOT_ARMED_BY_LEADER,
} from "./policy_status.ts";
export { describe } from "./describe.ts";
