/**
 * The one entry point for alerts: stdout without a callback, the callback otherwise, and stdout
 * with the error when the callback does not take it.
 *
 * @module
 */
import {
  CallbackDispatcher,
  type CallbackDispatcherOptions,
  type CallbackFailure,
  type CallbackTarget,
} from "./callbacks.ts";
import { alertPolicy, type KiveAlert } from "./kive_alert.ts";
import type { AlertFormat } from "./alert_formats.ts";
import type { AgentMetrics } from "./metrics.ts";
import { StdoutSink, type StdoutSinkOptions } from "./stdout.ts";

/** One alert to deliver. */
export interface Alert {
  /** Unique per alert; the `Kive-Alert-Id` header of callbacks. */
  id: string;
  /** The `KiveAlert` object, written as `{"KiveAlert": body}`. */
  body: KiveAlert;
  /**
   * The policy, for the `policy` and `namespace` labels of `kivebpf_alerts_total`. Default:
   * `body["kive-policy-name"]` and `body["kive-policy-namespace"]` (empty when absent).
   */
  policy?: { name: string; namespace: string };
  /** The trap's callback; without it the alert goes to stdout. */
  callback?: CallbackTarget;
  /** The shape it is written in, on stdout and to the callback. Default `kive`. */
  format?: AlertFormat;
}

/** Options of {@linkcode AlertSink}. */
export interface AlertSinkOptions {
  /** Stdout line format and destination. */
  stdout?: StdoutSinkOptions;
  /** Callback limits and timing (the fallback is always this sink's stdout). */
  callbacks?: Omit<CallbackDispatcherOptions, "onFailure" | "onDelivered" | "metrics">;
  /** Metrics to update; none by default. */
  metrics?: AgentMetrics;
}

/**
 * Delivers alerts: {@linkcode AlertSink.deliver} never blocks, never throws for a bad callback
 * and never drops an alert. Without `callback` the alert is one stdout line; with it, an HTTP
 * POST and no stdout line, unless delivery fails, in which case the stdout line carries an
 * `error` and the `callback` endpoint.
 *
 * @example
 * ```ts
 * const sink = new AlertSink({ stdout: { format: "json" } });
 * declare const alert: KiveAlert; // from src/agent/alert.ts's buildAlert()
 * sink.deliver({ id: crypto.randomUUID(), body: alert });
 * await sink.close();
 * ```
 */
export class AlertSink {
  #stdout: StdoutSink;
  #callbacks: CallbackDispatcher;
  #metrics: AgentMetrics | undefined;

  /**
   * Creates a sink with its own stdout writer and callback dispatcher.
   *
   * @param options Stdout, callback and metrics settings.
   */
  constructor(options: AlertSinkOptions = {}) {
    this.#stdout = new StdoutSink(options.stdout);
    this.#metrics = options.metrics;
    this.#callbacks = new CallbackDispatcher({
      ...options.callbacks,
      metrics: options.metrics,
      onFailure: (failure: CallbackFailure) => {
        const alert = failure.alert as Alert;
        this.#stdout.write(
          alert.body,
          { error: failure.error, callback: failure.endpoint },
          { format: alert.format, id: alert.id },
        );
        this.#count(alert, "stdout");
      },
      onDelivered: (alert) => this.#count(alert as Alert, "callback"),
    });
  }

  /**
   * Delivers one alert, returning at once.
   *
   * @param alert The alert, its unique id and optional callback.
   */
  deliver(alert: Alert): void {
    if (alert.callback) {
      this.#callbacks.enqueue({ ...alert, callback: alert.callback });
      return;
    }
    this.#stdout.write(alert.body, undefined, { format: alert.format, id: alert.id });
    this.#count(alert, "stdout");
  }

  /** Alerts not yet written or delivered. */
  get pending(): number {
    return this.#callbacks.pending + this.#stdout.pending;
  }

  /**
   * Waits for queued alerts, up to `timeoutMs` for the callbacks.
   *
   * @param timeoutMs Longest wait for callbacks in milliseconds; unbounded by default.
   * @returns True when nothing is left queued.
   */
  async flush(timeoutMs?: number): Promise<boolean> {
    const done = await this.#callbacks.flush(timeoutMs);
    await this.#stdout.flush();
    return done;
  }

  /**
   * Closes: callbacks get up to `timeoutMs` to finish, what remains is written to stdout with
   * the error, then stdout is flushed. Idempotent.
   *
   * @param options `timeoutMs` (default 10 000) bounds the callback drain.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    await this.#callbacks.close(options);
    await this.#stdout.close();
  }

  /** Same as {@linkcode AlertSink.close} with the default timeout. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #count(alert: Alert, sink: "stdout" | "callback"): void {
    if (!this.#metrics) return;
    const policy = alert.policy ?? alertPolicy(alert.body);
    this.#metrics.alerts.inc({ policy: policy.name, namespace: policy.namespace, sink });
  }
}
