/**
 * A small Prometheus registry (counters and gauges with labels), its text exposition format
 * 0.0.4, the agent's metric set and an HTTP server for `/metrics` and `/healthz`.
 *
 * @module
 */

/** Label names to values of one series. */
export type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The content type of the text exposition format 0.0.4. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Escapes a HELP text: backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** Escapes a label value: backslash, double quote and line feed. */
function escapeLabelValue(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** Shared part of {@linkcode Counter} and {@linkcode Gauge}: one metric family. */
export abstract class Metric {
  /** The metric name, e.g. `kivebpf_alerts_total`. */
  readonly name: string;
  /** The HELP text. */
  readonly help: string;
  /** The label names every series must set, in exposition order. */
  readonly labelNames: readonly string[];
  /** Values keyed by the serialized label set. */
  protected readonly series = new Map<string, number>();

  /**
   * Defines a family with no series yet.
   *
   * @param name The metric name, e.g. `kivebpf_alerts_total`.
   * @param help The HELP text.
   * @param labelNames The label names every series must set, in exposition order.
   * @throws {TypeError} When the name or a label name is not valid in Prometheus.
   */
  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!METRIC_NAME.test(name)) {
      throw new TypeError(`Cannot define metric "${name}": not a valid Prometheus metric name`);
    }
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith("__")) {
        throw new TypeError(`Cannot define metric "${name}": invalid label name "${label}"`);
      }
    }
    this.name = name;
    this.help = help;
    this.labelNames = [...labelNames];
  }

  /** The Prometheus type word of this family. */
  abstract readonly type: "counter" | "gauge";

  /** Serializes labels as `{a="x",b="y"}` in declared order; checks they match the names. */
  protected key(labels: Labels): string {
    const given = Object.keys(labels);
    if (
      given.length !== this.labelNames.length ||
      !this.labelNames.every((label) => Object.hasOwn(labels, label))
    ) {
      throw new TypeError(
        `Cannot update metric "${this.name}": labels {${given.join(",")}} do not match ` +
          `{${this.labelNames.join(",")}}`,
      );
    }
    if (this.labelNames.length === 0) return "";
    const parts = this.labelNames.map(
      (label) => `${label}="${escapeLabelValue(String(labels[label]))}"`,
    );
    return `{${parts.join(",")}}`;
  }

  /** Current value of one series, or `undefined` if it was never set. */
  get(labels: Labels = {}): number | undefined {
    return this.series.get(this.key(labels));
  }

  /** Forgets one series, e.g. the queue depth of an endpoint that is gone. */
  remove(labels: Labels = {}): void {
    this.series.delete(this.key(labels));
  }

  /** The HELP, TYPE and sample lines of this family. */
  render(): string {
    let text = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    for (const [key, value] of this.series) text += `${this.name}${key} ${formatValue(value)}\n`;
    return text;
  }
}

/** A monotonically increasing counter family. */
export class Counter extends Metric {
  /** Always `counter`. */
  readonly type = "counter" as const;

  /**
   * Adds to one series.
   *
   * @param labels One value per declared label name.
   * @param value A non-negative amount, 1 by default.
   */
  inc(labels: Labels = {}, value = 1): void {
    if (!(value >= 0)) {
      throw new RangeError(`Cannot increase counter "${this.name}" by ${value}: must be >= 0`);
    }
    const key = this.key(labels);
    this.series.set(key, (this.series.get(key) ?? 0) + value);
  }
}

/** A gauge family: values that go up and down. */
export class Gauge extends Metric {
  /** Always `gauge`. */
  readonly type = "gauge" as const;

  /**
   * Sets one series.
   *
   * @param labels One value per declared label name.
   * @param value The new value.
   */
  set(labels: Labels, value: number): void {
    this.series.set(this.key(labels), value);
  }

  /** Adds `value` (1 by default) to one series. */
  inc(labels: Labels = {}, value = 1): void {
    const key = this.key(labels);
    this.series.set(key, (this.series.get(key) ?? 0) + value);
  }

  /** Subtracts `value` (1 by default) from one series. */
  dec(labels: Labels = {}, value = 1): void {
    this.inc(labels, -value);
  }
}

/**
 * Holds metric families and renders them in the text exposition format 0.0.4.
 *
 * @example
 * ```ts
 * const registry = new Registry();
 * const hits = registry.counter("hits_total", "Hits.", ["path"]);
 * hits.inc({ path: "/" });
 * registry.render(); // "# HELP hits_total Hits.\n# TYPE hits_total counter\nhits_total{path=\"/\"} 1\n"
 * ```
 */
export class Registry {
  #metrics = new Map<string, Metric>();

  #add<T extends Metric>(metric: T): T {
    if (this.#metrics.has(metric.name)) {
      throw new TypeError(`Cannot register metric "${metric.name}": already registered`);
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }

  /**
   * Registers a counter.
   *
   * @param name Metric name, ending in `_total` by convention.
   * @param help One-line description.
   * @param labelNames Label names every series sets.
   * @returns The counter.
   */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  /**
   * Registers a gauge.
   *
   * @param name Metric name.
   * @param help One-line description.
   * @param labelNames Label names every series sets.
   * @returns The gauge.
   */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }

  /** Renders every family, in registration order. */
  render(): string {
    let text = "";
    for (const metric of this.#metrics.values()) text += metric.render();
    return text;
  }
}

/** Names of the agent's metrics. */
export const METRIC_NAMES = {
  alerts: "kivebpf_alerts_total",
  callbackFailures: "kivebpf_callback_failures_total",
  callbackRetries: "kivebpf_callback_retries_total",
  callbackQueueDepth: "kivebpf_callback_queue_depth",
  eventsLost: "kivebpf_events_lost_total",
  eventsAggregated: "kivebpf_events_aggregated_total",
  trapsArmed: "kivebpf_traps_armed",
  backendInfo: "kivebpf_backend_info",
  leader: "kivebpf_leader",
  leaseTakeoverSeconds: "kivebpf_lease_takeover_seconds",
  leaseTakeovers: "kivebpf_lease_takeovers_total",
  probeOk: "kivebpf_probe_ok",
  trapFileChanges: "kivebpf_trap_file_changes_total",
} as const;

/** Every metric the agent exports, registered in one {@linkcode Registry}. */
export interface AgentMetrics {
  /** The registry holding them all, for {@linkcode serveMetrics}. */
  registry: Registry;
  /** Alerts written, by policy, policy namespace and sink (`stdout` or `callback`). */
  alerts: Counter;
  /**
   * Alerts a callback could not take, by endpoint and reason (`rejected`, `retries_exhausted`,
   * `queue_full`, `shutdown`, `invalid`); each also went to stdout.
   */
  callbackFailures: Counter;
  /** Callback attempts that were retried, by endpoint. */
  callbackRetries: Counter;
  /** Alerts queued or in flight, by callback endpoint. */
  callbackQueueDepth: Gauge;
  /** Kernel events the ring buffer could not take. */
  eventsLost: Counter;
  /** Kernel events folded into an earlier alert. */
  eventsAggregated: Counter;
  /** Traps armed in the kernel. */
  trapsArmed: Gauge;
  /** 1 for the kernel backend in use. */
  backendInfo: Gauge;
  /** 1 while this agent holds the Lease of its kernel, else 0. */
  leader: Gauge;
  /**
   * Seconds from the last change of the kernel's Lease, as this agent saw it, to this agent
   * taking it over: the blind window of a takeover where the programs do not outlive the
   * previous leader. The last takeover's value.
   */
  leaseTakeoverSeconds: Gauge;
  /** Takeovers of the kernel's Lease by this agent. */
  leaseTakeovers: Counter;
  /** 1 while a health probe (`probe` = ready or live) passes, 0 while it fails. */
  probeOk: Gauge;
  /** Changes containers made to their trap files, by kind (`Removed`, `Moved`, ...). */
  trapFileChanges: Counter;
}

/**
 * Registers the agent's metrics.
 *
 * @param registry Where to register them; a new one by default.
 * @returns The metric handles.
 */
export function createAgentMetrics(registry: Registry = new Registry()): AgentMetrics {
  return {
    registry,
    alerts: registry.counter(
      METRIC_NAMES.alerts,
      "Alerts written, by policy, policy namespace and sink.",
      ["policy", "namespace", "sink"],
    ),
    callbackFailures: registry.counter(
      METRIC_NAMES.callbackFailures,
      "Alerts a callback endpoint did not take and that were written to stdout instead.",
      ["endpoint", "reason"],
    ),
    callbackRetries: registry.counter(
      METRIC_NAMES.callbackRetries,
      "Callback requests retried after a timeout, network error, 408, 429 or 5xx.",
      ["endpoint"],
    ),
    callbackQueueDepth: registry.gauge(
      METRIC_NAMES.callbackQueueDepth,
      "Alerts queued or in flight per callback endpoint.",
      ["endpoint"],
    ),
    eventsLost: registry.counter(
      METRIC_NAMES.eventsLost,
      "Kernel events dropped because the ring buffer was full.",
    ),
    eventsAggregated: registry.counter(
      METRIC_NAMES.eventsAggregated,
      "Kernel events folded into an earlier alert.",
    ),
    trapsArmed: registry.gauge(METRIC_NAMES.trapsArmed, "Traps armed in the kernel."),
    backendInfo: registry.gauge(
      METRIC_NAMES.backendInfo,
      "The kernel backend in use (value 1).",
      ["backend"],
    ),
    leader: registry.gauge(
      METRIC_NAMES.leader,
      "1 while this agent leads its kernel, else 0.",
      ["kernel_id"],
    ),
    leaseTakeoverSeconds: registry.gauge(
      METRIC_NAMES.leaseTakeoverSeconds,
      "Seconds from the Lease's last change, as this agent saw it, to its last takeover.",
      ["kernel_id"],
    ),
    leaseTakeovers: registry.counter(
      METRIC_NAMES.leaseTakeovers,
      "Takeovers of the kernel's Lease by this agent.",
      ["kernel_id"],
    ),
    probeOk: registry.gauge(
      METRIC_NAMES.probeOk,
      "1 while the health probe passes (probe: ready for /readyz, live for /healthz), else 0.",
      ["probe"],
    ),
    trapFileChanges: registry.counter(
      METRIC_NAMES.trapFileChanges,
      "Changes containers made to their trap files (removed, replaced, moved, chmod...), by kind.",
      ["kind"],
    ),
  };
}

/** Options of {@linkcode serveMetrics}. */
export interface MetricsServerOptions {
  /** Port; 0 picks a free one (see the returned server's `addr`). Default 9090. */
  port?: number;
  /** Address to listen on; default `0.0.0.0`. */
  hostname?: string;
  /** Stops the server when aborted. */
  signal?: AbortSignal;
  /**
   * Health endpoints by path (such as `/healthz`, `/readyz`): 200 "ok" while the verdict is ok,
   * else 503 with one reason per line. Without it, `/healthz` always answers ok.
   */
  probes?: Record<string, () => { ok: boolean; reasons: readonly string[] }>;
}

/**
 * Serves `GET /metrics` (the registry's text) and the health probes over plain HTTP.
 *
 * @param registry The metrics to expose.
 * @param options Address, port and stop signal.
 * @returns The running server; `await server.shutdown()` or abort `signal` to stop it.
 */
export function serveMetrics(
  registry: Registry,
  options: MetricsServerOptions = {},
): Deno.HttpServer<Deno.NetAddr> {
  const probes = options.probes ?? { "/healthz": () => ({ ok: true, reasons: [] }) };
  return Deno.serve({
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port ?? 9090,
    signal: options.signal,
    onListen: () => {},
  }, (request) => {
    const { pathname } = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET" } });
    }
    if (pathname === "/metrics") {
      return new Response(registry.render(), { headers: { "content-type": METRICS_CONTENT_TYPE } });
    }
    const probe = Object.hasOwn(probes, pathname) ? probes[pathname] : undefined;
    if (probe) {
      const verdict = probe();
      return verdict.ok
        ? new Response("ok\n")
        : new Response(`${verdict.reasons.join("\n")}\n`, { status: 503 });
    }
    return new Response("not found\n", { status: 404 });
  });
}
