/**
 * The leader's alert path: engine events routed through the kernel's trap ids to the
 * registrations they hit, built into KiveAlerts and handed to the output (stdout or the
 * policy's callback, with headers from a labelled Secret), plus a Kubernetes Event on the pod.
 * Nothing here waits for the API server. The benchmark's agent (scripts/bench/agent.ts) runs
 * this same path.
 *
 * @module
 */
import type { AlertFormat } from "../delivery/mod.ts";
import type { AgentMetrics, Alert } from "../delivery/mod.ts";
import type { AccessEvent, EngineEvent, TrapEngine } from "../engine/mod.ts";
import { buildAlert, buildLossAlert, type TrapRegistration } from "./alert.ts";
import type { ContainerOfProcess, KernelArms } from "./kernel_arms.ts";
import type { Logger } from "./log.ts";
import type { CallbackHeaders } from "./callback_headers.ts";
import { describe } from "./describe.ts";
import type { PodEvents } from "./pod_events.ts";

/** Events held before the first kernel sync of a new leader, at most (then counted lost). */
const MAX_HELD_EVENTS = 65536;

/** Where alerts go. */
export interface AlertOutput {
  /** Takes one alert; must return at once and never throw. */
  deliver(alert: Alert): void;
}

/** Options of {@linkcode AlertRouter}. */
export interface AlertRouterOptions {
  /** The kernel's boot id, in alerts and alert ids. */
  kernelId: string;
  log: Logger;
  metrics?: AgentMetrics;
  output: AlertOutput;
  /** The shape of alerts (a trap's `callbackFormat` overrides it for its callback). Default kive. */
  format?: AlertFormat;
  /** The headers of callback header Secrets; callbacks go without them when absent. */
  headers?: Pick<CallbackHeaders, "get">;
  /** Writes the rate-limited pod Events; none without it. */
  podEvents?: PodEvents;
  /** Finds the container an accessing process runs in. */
  containerOf?: ContainerOfProcess;
}

/** Routes a leader's kernel events to alerts. */
export class AlertRouter {
  readonly #o: AlertRouterOptions;
  readonly #arms: KernelArms;
  #held: EngineEvent[] | null = null;
  #alertSeq = 0;

  /**
   * @param options Where alerts go and the clients for Secrets and Events.
   * @param arms The leader's trap ids and their registrations.
   */
  constructor(options: AlertRouterOptions, arms: KernelArms) {
    this.#o = options;
    this.#arms = arms;
  }

  /**
   * Turns the engine's events into alerts until its stream ends (the engine closed).
   *
   * @param engine The leader's engine.
   */
  async run(engine: TrapEngine): Promise<void> {
    try {
      for await (const event of engine.events()) this.route(event);
    } catch (error) {
      if (!engine.closed) this.#o.log.error("event stream failed", { error: describe(error) });
    }
  }

  /**
   * Holds events instead of alerting, until {@linkcode AlertRouter.release}: a new leader's
   * trap ids (adopted from pins) have no registrations before its first kernel sync.
   */
  hold(): void {
    this.#held ??= [];
  }

  /** Alerts for what was held, and stops holding. */
  release(): void {
    const held = this.#held;
    this.#held = null;
    for (const event of held ?? []) this.route(event);
  }

  /** Whether events are held now. */
  get holding(): boolean {
    return this.#held !== null;
  }

  /** Stops holding and forgets what was held (the engine is gone). */
  drop(): void {
    this.#held = null;
  }

  /**
   * Alerts for one engine event: one alert per (policy, trap) the access hit, or a loss
   * summary per registration of the trap that lost accesses.
   *
   * @param event An access or a loss notice.
   */
  route(event: EngineEvent): void {
    if (this.#held) {
      if (this.#held.length < MAX_HELD_EVENTS) this.#held.push(event);
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
          format: this.#formatOf(registration),
        });
      }
      return;
    }
    if (event.count > 1) metrics?.eventsAggregated.inc({}, event.count - 1);
    const routed = this.#arms.route(event, this.#o.containerOf);
    if (routed.length === 0) {
      log.debug("event for a trap no longer armed", { dev: event.dev, ino: event.ino });
      return;
    }
    for (const registration of routed) {
      // The same access always gets the same id (the kernel's event, the trap), so that a
      // receiver can drop the duplicates two agents send around a takeover.
      const id = `${kernelId}-${event.bootNs}-${event.tgid}-${event.pid}-` +
        `${registration.policy.uid}-${registration.trapIndex}`;
      output.deliver({
        id,
        body: buildAlert(event, registration, kernelId, id),
        policy: { name: registration.policy.name, namespace: registration.policy.namespace },
        callback: this.#callbackOf(registration),
        format: this.#formatOf(registration),
      });
      this.#podEvent(event, registration);
    }
  }

  /** The shape of a registration's alerts: its callbackFormat for its callback, else the agent's. */
  #formatOf(registration: TrapRegistration): AlertFormat {
    return (registration.callback && registration.callbackFormat) || this.#o.format || "kive";
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
      target.headers = this.#o.headers?.get(registration.callbackHeadersSecret);
    }
    return target;
  }

  #podEvent(event: AccessEvent, registration: TrapRegistration): void {
    this.#o.podEvents?.emit(registration.pod, {
      reason: "TrapAccessed",
      action: "Access",
      note: `${event.comm} (pid ${event.tgid}, uid ${event.uid}) accessed trap ` +
        `${registration.path} of KivePolicy ${registration.policy.namespace}/` +
        registration.policy.name,
    });
  }
}
