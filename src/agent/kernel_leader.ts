/**
 * The kernel side of a leading agent: opens (or adopts) the engine when the agent becomes its
 * kernel's leader, arms every live registration of the kernel, keeps what the kernel refused
 * and which `block` traps only alert (for status), and closes the engine when leadership ends
 * (leaving the pins for a successor, or removing them on a last stop with nothing armed).
 *
 * @module
 */
import type { TrapEngine } from "../engine/mod.ts";
import type { AgentMetrics } from "../delivery/mod.ts";
import type { TrapRegistration } from "./alert.ts";
import type { AlertRouter } from "./alert_router.ts";
import type { CallbackHeaders } from "./callback_headers.ts";
import type { TrapProblem, TrapTarget } from "./desired.ts";
import type { KernelArms, SyncResult } from "./kernel_arms.ts";
import type { Logger } from "./log.ts";
import { REASON_BLOCK_NOT_ENFORCED } from "./policy_status.ts";

/** Options of {@linkcode KernelLeader}. */
export interface KernelLeaderOptions {
  nodeName: string;
  kernelId: string;
  log: Logger;
  metrics?: AgentMetrics;
  /** Loads (or adopts) the engine. */
  openEngine: () => Promise<TrapEngine>;
  /** Routes the engine's events; held until the first sync. */
  alerts: AlertRouter;
  /** Trap ids and inode bookkeeping shared with the alert router. */
  arms: KernelArms;
  /** The callback header Secrets the armed traps name, refreshed at each sync. */
  headers?: Pick<CallbackHeaders, "refresh">;
  /** Turn the engine's cgroup prefilter on where every trap's cgroup is known. */
  cgroupFilter?: boolean;
  /** One line for an error, for logs and status. */
  describe: (error: unknown) => string;
}

/** A registration's identity: policy, trap, pod, container and inode. */
export function registrationKey(r: TrapRegistration): string {
  return `${r.policy.uid}/${r.trapIndex}/${r.pod.uid}/${r.container.name}/${r.dev}:${r.ino}`;
}

/** The engine and what it armed, while this agent leads its kernel. */
export class KernelLeader {
  readonly #o: KernelLeaderOptions;
  #engine?: TrapEngine;
  #engineLoop?: Promise<void>;
  /** This node's registrations the kernel refused, by registration key, with the error. */
  #armFailures = new Map<string, string>();
  /** This node's registrations whose `block` the backend cannot enforce (armed to alert). */
  #blockNotEnforced = new Set<string>();

  /** @param options The node, its kernel and the engine factory. */
  constructor(options: KernelLeaderOptions) {
    this.#o = options;
  }

  /** The open engine, while leading. */
  get engine(): TrapEngine | undefined {
    return this.#engine;
  }

  /**
   * Opens (or adopts) the engine and starts routing its events.
   *
   * @returns Whether the engine opened; on false the caller should give up the Lease.
   */
  async start(): Promise<boolean> {
    const { log, kernelId, metrics, arms, alerts } = this.#o;
    let engine: TrapEngine;
    try {
      engine = await this.#o.openEngine();
    } catch (error) {
      log.error("cannot load BPF programs; giving up the lease", {
        error: this.#o.describe(error),
      });
      return false;
    }
    this.#engine = engine;
    // Events are held until the first kernel sync has attached registrations to the
    // (possibly adopted) trap ids: what accumulated while no agent read must route.
    alerts.hold();
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
      arms.adopt(armed);
      log.info("adopted the pinned traps of a previous leader", {
        inodes: armed.length,
        links: engine.pins.adoptedLinks ? "adopted" : "replaced",
      });
    }
    metrics?.leader.set({ kernel_id: kernelId }, 1);
    metrics?.backendInfo.set({ backend: engine.backend }, 1);
    this.#engineLoop = alerts.run(engine);
    return true;
  }

  /**
   * Ends leading: closes the engine after routing what it drained. The pins stay for the
   * successor, unless the agent is stopping with nothing armed (policies deleted, kivebpf being
   * removed): then nothing is left in the kernel.
   *
   * @param stopping Whether the agent itself is stopping.
   */
  async stop(stopping: boolean): Promise<void> {
    const { log, kernelId, metrics, arms, alerts } = this.#o;
    metrics?.leader.set({ kernel_id: kernelId }, 0);
    const engine = this.#engine;
    this.#engine = undefined;
    const pinRoot = engine?.pins?.root;
    if (engine && pinRoot && stopping && arms.armedInodes === 0) {
      try {
        engine.unpin();
        log.info("no trap left: removed the pinned BPF objects", { dir: pinRoot });
      } catch (error) {
        log.warn("cannot remove the pinned BPF objects", { error: this.#o.describe(error) });
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
    arms.reset();
    alerts.drop();
  }

  /**
   * Arms exactly `registrations` (every live one of the kernel) and releases held events.
   *
   * @param registrations This node's and its peers' registrations of live policies.
   */
  sync(registrations: readonly TrapRegistration[]): void {
    const engine = this.#engine;
    if (!engine) return;
    const { arms, alerts, log, headers } = this.#o;
    headers?.refresh(
      registrations.flatMap((r) => r.callbackHeadersSecret ? [r.callbackHeadersSecret] : []),
    ).catch(() => {});
    const result = arms.sync(engine, registrations);
    this.#startAlertSeries(registrations);
    this.#recordSyncProblems(result);
    const firstSync = alerts.holding;
    alerts.release();
    const { armed, disarmed } = result;
    if (this.#o.cgroupFilter) this.#applyCgroupFilter(engine, registrations);
    // The first sync of a leader always says what is armed (an adopted set may need no change).
    if (armed || disarmed || (firstSync && arms.armedInodes > 0)) {
      log.info("kernel traps updated", { armed, disarmed, inodes: arms.armedInodes });
      log.debug("kernel registrations", {
        registrations: registrations.map((r) =>
          `${r.node}:${r.pod.name}:${r.path}:${r.dev}:${r.ino}`
        ),
      });
    }
    this.#o.metrics?.trapsArmed.set({}, arms.armedInodes);
  }

  /**
   * Starts the alert counters of every armed policy at 0, so that Prometheus sees the first
   * access as an increase (a series first scraped at 1 has none).
   */
  #startAlertSeries(registrations: readonly TrapRegistration[]): void {
    const alerts = this.#o.metrics?.alerts;
    if (!alerts) return;
    for (const { policy } of registrations) {
      for (const sink of ["stdout", "callback"]) {
        alerts.inc({ policy: policy.name, namespace: policy.namespace, sink }, 0);
      }
    }
  }

  /** The kernel's refusal of this node's registration, if it refused it. */
  armFailure(registration: TrapRegistration): string | undefined {
    return this.#armFailures.get(registrationKey(registration));
  }

  /**
   * Status problems for this node's block traps that are armed to alert only. (Traps the
   * kernel refused are reported as not armed in their plant outcome instead.)
   *
   * @param planted This node's planted targets with their registrations.
   */
  blockProblems(
    planted: Iterable<{ target: TrapTarget; registration?: TrapRegistration }>,
  ): TrapProblem[] {
    const problems: TrapProblem[] = [];
    for (const { target, registration } of planted) {
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

  /** Logs what the kernel refused (each item named) and keeps this node's share for status. */
  #recordSyncProblems(result: SyncResult): void {
    const { log, nodeName, describe } = this.#o;
    const failures = new Map<string, string>();
    for (const { registrations, error, op } of result.failed) {
      const message = describe(error);
      for (const r of registrations) {
        const key = registrationKey(r);
        // A failed disarm leaves the inode armed: only failed arms are gaps in status.
        if (op === "arm" && r.node === nodeName) failures.set(key, message);
        if (this.#armFailures.get(key) !== message) {
          log.error(`cannot ${op} trap in the kernel`, {
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
      if (r.node === nodeName) notEnforced.add(key);
      if (!this.#blockNotEnforced.has(key)) {
        log.warn("block not enforced: this backend can only alert", {
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
}
