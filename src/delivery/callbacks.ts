/**
 * HTTP callbacks: POSTs each alert to its trap's URL with one queue per endpoint, bounded
 * concurrency, timeouts and retries, and hands every alert it cannot deliver to a fallback.
 *
 * @module
 */
import { CaClients, errorMessage as message, postOnce, type PostRequest } from "./_post.ts";
import { backoffDelay, sleep } from "./_retry.ts";
import type { KiveAlert } from "./kive_alert.ts";
import { type AlertFormat, alertPayload, payloadContentType } from "./alert_formats.ts";
import type { AgentMetrics } from "./metrics.ts";

/** Where and how to POST one alert. */
export interface CallbackTarget {
  /** An `http:` or `https:` URL. */
  url: string;
  /** Extra request headers (e.g. from a Secret, resolved by the caller). */
  headers?: Record<string, string>;
  /** PEM CA certificates trusted for this `https:` URL, in addition to the system roots. */
  caBundle?: string;
}

/** One alert for a callback. */
export interface CallbackAlert {
  /** Unique per alert; sent as `Kive-Alert-Id` so receivers can drop duplicate retries. */
  id: string;
  /** The `KiveAlert` object; the request body is `{"KiveAlert": body}`. */
  body: KiveAlert;
  /** The endpoint. */
  callback: CallbackTarget;
  /** The body's shape (alert_formats.ts). Default `kive`. */
  format?: AlertFormat;
}

/**
 * Why an alert was not delivered.
 *
 * - `rejected`: the endpoint answered with a status that is not retried (4xx other than 408 and
 *   429, or a redirect).
 * - `retries_exhausted`: retries did not succeed within the retry budget.
 * - `queue_full`: the endpoint's queue was full and this was its oldest alert.
 * - `shutdown`: the dispatcher closed before the alert could be delivered.
 * - `invalid`: the URL, headers or CA bundle cannot be used.
 */
export type CallbackFailureReason =
  | "rejected"
  | "retries_exhausted"
  | "queue_full"
  | "shutdown"
  | "invalid";

/** An alert the dispatcher gave up on; it goes to the fallback (stdout). */
export interface CallbackFailure {
  /** The alert. */
  alert: CallbackAlert;
  /** The endpoint: the URL's origin and path, without query or credentials. */
  endpoint: string;
  /** The category, also the `reason` label of `kivebpf_callback_failures_total`. */
  reason: CallbackFailureReason;
  /** A sentence with the last error, e.g. `Callback failed: HTTP 503 ... after 7 attempts`. */
  error: string;
  /** Requests made for this alert. */
  attempts: number;
}

/** Options of {@linkcode CallbackDispatcher}. */
export interface CallbackDispatcherOptions {
  /** Receives every alert that was not delivered. Must not throw. */
  onFailure: (failure: CallbackFailure) => void;
  /** Called for every alert an endpoint accepted (2xx). */
  onDelivered?: (alert: CallbackAlert, endpoint: string) => void;
  /** Failure, retry and queue-depth metrics are updated here when given. */
  metrics?: Pick<AgentMetrics, "callbackFailures" | "callbackRetries" | "callbackQueueDepth">;
  /** Timeout of one request, in milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** Requests in flight per endpoint. Default 4. */
  concurrency?: number;
  /** Alerts waiting per endpoint (not counting those in flight). Default 1000. */
  queueSize?: number;
  /** First retry delay in milliseconds, doubled per retry. Default 200. */
  initialBackoffMs?: number;
  /** Cap of the retry delay in milliseconds. Default 30 000. */
  maxBackoffMs?: number;
  /**
   * Time from enqueueing after which an alert is not retried any more, in milliseconds.
   * Default 300 000 (5 minutes).
   */
  retryBudgetMs?: number;
  /** Random source of the backoff jitter; `Math.random` by default. */
  random?: () => number;
}

/** One alert's delivery: the request (its URL normalized) and its retry state. */
interface Job extends PostRequest {
  alert: CallbackAlert;
  deadline: number;
  attempts: number;
  lastError: string | undefined;
}

interface Endpoint {
  key: string;
  queue: Job[];
  /** Workers running, each holding at most one job. */
  active: number;
  /** Jobs taken from the queue and not settled. */
  inFlight: number;
  /** The error of the last attempt, undefined after a success. */
  lastError: string | undefined;
}

/**
 * Delivers alerts to HTTP callbacks.
 *
 * Each alert is a `POST` to its URL with `content-type: application/json`, the body
 * `{"KiveAlert": {...}}` (the same object as the stdout line) and the header
 * `Kive-Alert-Id: <id>`, the same on every retry, so receivers can de-duplicate at-least-once
 * delivery. Endpoints (origin and path) have separate queues and workers, so a slow or dead one
 * delays no other. Timeouts, network errors, 408, 429 and 5xx are retried with exponential
 * backoff and jitter (`Retry-After` is honoured) until the retry budget ends; other answers
 * that are not 2xx are not retried. Every alert is either delivered or handed to `onFailure`.
 *
 * @example
 * ```ts
 * const dispatcher = new CallbackDispatcher({ onFailure: (f) => console.log(f.error) });
 * declare const alert: KiveAlert; // from src/agent/alert.ts's buildAlert()
 * dispatcher.enqueue({ id: "a1", body: alert, callback: { url: "http://127.0.0.1:9376/ingest" } });
 * await dispatcher.close({ timeoutMs: 5000 });
 * ```
 */
export class CallbackDispatcher {
  #onFailure: (failure: CallbackFailure) => void;
  #onDelivered: (alert: CallbackAlert, endpoint: string) => void;
  #metrics: CallbackDispatcherOptions["metrics"];
  #timeoutMs: number;
  #concurrency: number;
  #queueSize: number;
  #initialBackoffMs: number;
  #maxBackoffMs: number;
  #retryBudgetMs: number;
  #random: () => number;
  #endpoints = new Map<string, Endpoint>();
  #clients = new CaClients();
  #workers = new Set<Promise<void>>();
  #shutdown = new AbortController();
  #closing = false;
  #closed: Promise<void> | undefined;

  /**
   * Creates a dispatcher with nothing queued.
   *
   * @param options Fallback, limits and timing.
   * @throws {RangeError} When a limit or duration is not a positive number.
   */
  constructor(options: CallbackDispatcherOptions) {
    this.#onFailure = options.onFailure;
    this.#onDelivered = options.onDelivered ?? (() => {});
    this.#metrics = options.metrics;
    this.#timeoutMs = positive("timeoutMs", options.timeoutMs ?? 10_000);
    this.#concurrency = positive("concurrency", options.concurrency ?? 4);
    this.#queueSize = positive("queueSize", options.queueSize ?? 1000);
    this.#initialBackoffMs = positive("initialBackoffMs", options.initialBackoffMs ?? 200);
    this.#maxBackoffMs = positive("maxBackoffMs", options.maxBackoffMs ?? 30_000);
    this.#retryBudgetMs = positive("retryBudgetMs", options.retryBudgetMs ?? 300_000);
    this.#random = options.random ?? Math.random;
  }

  /** Alerts queued or in flight, over all endpoints. */
  get pending(): number {
    let count = 0;
    for (const endpoint of this.#endpoints.values()) {
      count += endpoint.queue.length + endpoint.inFlight;
    }
    return count;
  }

  /**
   * Queues one alert for its endpoint and returns at once. An alert that cannot be sent (bad
   * URL or headers, or the dispatcher is closing) goes to `onFailure` at once; when the
   * endpoint's queue is full, its oldest waiting alert goes there with reason `queue_full`.
   *
   * @param alert The alert and its callback.
   */
  enqueue(alert: CallbackAlert): void {
    let url: URL;
    try {
      url = new URL(alert.callback.url);
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new TypeError(`protocol "${url.protocol}" is not http: or https:`);
      }
    } catch (cause) {
      this.#fail(
        alert,
        "(invalid)",
        "invalid",
        `Callback failed: cannot use URL "${alert.callback.url}": ${message(cause)}`,
        0,
      );
      return;
    }
    const key = `${url.origin}${url.pathname}`;
    if (this.#closing) {
      this.#fail(alert, key, "shutdown", "Callback failed: the agent is shutting down", 0);
      return;
    }
    let job: Job;
    try {
      job = this.#job(alert, url, key);
    } catch (cause) {
      this.#fail(alert, key, "invalid", `Callback failed: ${message(cause)}`, 0);
      return;
    }
    let endpoint = this.#endpoints.get(key);
    if (!endpoint) {
      endpoint = { key, queue: [], active: 0, inFlight: 0, lastError: undefined };
      this.#endpoints.set(key, endpoint);
    }
    if (endpoint.queue.length >= this.#queueSize) {
      const oldest = endpoint.queue.shift()!;
      const last = oldest.lastError ?? endpoint.lastError;
      this.#fail(
        oldest.alert,
        key,
        "queue_full",
        `Callback failed: queue full (${this.#queueSize} alerts waiting)` +
          (last ? `; last error: ${last}` : ""),
        oldest.attempts,
      );
    }
    endpoint.queue.push(job);
    this.#depth(endpoint);
    if (endpoint.active < this.#concurrency) this.#startWorker(endpoint);
  }

  /**
   * Waits until every queue is empty and nothing is in flight, or until `timeoutMs` passes.
   *
   * @param timeoutMs Longest wait in milliseconds; unbounded by default.
   * @returns True when everything was delivered or handed to `onFailure`.
   */
  async flush(timeoutMs: number = Infinity): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#workers.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const all = Promise.all(this.#workers);
      if (!Number.isFinite(left)) {
        await all;
        continue;
      }
      const timer = new AbortController();
      await Promise.race([all, sleep(left, timer.signal)]);
      timer.abort();
    }
    return true;
  }

  /**
   * Stops taking alerts, gives queued alerts up to `timeoutMs` to be delivered, then aborts
   * what remains and hands it to `onFailure` with reason `shutdown`, and closes the HTTP
   * clients. Idempotent.
   *
   * @param options `timeoutMs` (default 10 000) bounds the drain.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      await this.flush(options.timeoutMs ?? 10_000);
      this.#shutdown.abort();
      await this.flush();
      this.#clients.close();
    })();
    return this.#closed;
  }

  /** Same as {@linkcode CallbackDispatcher.close} with the default timeout. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #job(alert: CallbackAlert, url: URL, endpoint: string): Job {
    const headers = new Headers(alert.callback.headers);
    const format = alert.format ?? "kive";
    headers.set("content-type", payloadContentType(format));
    headers.set("kive-alert-id", alert.id);
    if (!headers.has("user-agent")) headers.set("user-agent", "kivebpf");
    return {
      alert,
      url: url.href,
      endpoint,
      headers,
      body: JSON.stringify(alertPayload(alert.body, format, alert.id)),
      client: alert.callback.caBundle ? this.#clients.get(alert.callback.caBundle) : undefined,
      deadline: Date.now() + this.#retryBudgetMs,
      attempts: 0,
      lastError: undefined,
    };
  }

  #startWorker(endpoint: Endpoint): void {
    endpoint.active++;
    const worker = this.#work(endpoint).finally(() => this.#workers.delete(worker));
    this.#workers.add(worker);
  }

  async #work(endpoint: Endpoint): Promise<void> {
    for (let job = endpoint.queue.shift(); job; job = endpoint.queue.shift()) {
      endpoint.inFlight++;
      try {
        await this.#deliver(endpoint, job);
      } finally {
        endpoint.inFlight--;
        this.#depth(endpoint);
      }
    }
    // Decremented in the same turn that saw the queue empty, so enqueue() starts a new worker
    // for anything queued after this.
    endpoint.active--;
    if (endpoint.active === 0) this.#endpoints.delete(endpoint.key);
  }

  /** Tries one job until it is delivered or given up; never throws. */
  async #deliver(endpoint: Endpoint, job: Job): Promise<void> {
    const { key } = endpoint;
    if (Date.now() > job.deadline && endpoint.lastError !== undefined) {
      // The budget ran out while queued behind an endpoint that is still failing.
      this.#giveUp(job, key, "retries_exhausted", endpoint.lastError);
      return;
    }
    for (;;) {
      if (this.#shutdown.signal.aborted) {
        this.#giveUp(job, key, "shutdown", job.lastError ?? "the agent is shutting down");
        return;
      }
      job.attempts++;
      const outcome = await postOnce(job, this.#timeoutMs, this.#shutdown.signal);
      if (outcome.ok) {
        endpoint.lastError = undefined;
        try {
          this.#onDelivered(job.alert, key);
        } catch {
          // A throwing observer must not turn a delivered alert into a failed one.
        }
        return;
      }
      job.lastError = endpoint.lastError = outcome.error;
      if (this.#shutdown.signal.aborted) {
        this.#giveUp(job, key, "shutdown", outcome.error);
        return;
      }
      if (!outcome.retry) {
        this.#giveUp(job, key, "rejected", outcome.error);
        return;
      }
      const backoff = backoffDelay(job.attempts, {
        initialMs: this.#initialBackoffMs,
        maxMs: this.#maxBackoffMs,
        random: this.#random,
      });
      const wait = Math.max(backoff, outcome.retryAfterMs ?? 0);
      if (Date.now() + wait > job.deadline) {
        this.#giveUp(job, key, "retries_exhausted", outcome.error);
        return;
      }
      this.#metrics?.callbackRetries.inc({ endpoint: key });
      await sleep(wait, this.#shutdown.signal);
    }
  }

  #giveUp(job: Job, key: string, reason: CallbackFailureReason, last: string): void {
    const attempts = job.attempts === 1 ? "1 attempt" : `${job.attempts} attempts`;
    const what = reason === "shutdown" ? "not delivered before shutdown" : "failed";
    this.#fail(job.alert, key, reason, `Callback ${what} after ${attempts}: ${last}`, job.attempts);
  }

  #fail(
    alert: CallbackAlert,
    endpoint: string,
    reason: CallbackFailureReason,
    error: string,
    attempts: number,
  ): void {
    this.#metrics?.callbackFailures.inc({ endpoint, reason });
    try {
      this.#onFailure({ alert, endpoint, reason, error, attempts });
    } catch (cause) {
      // The fallback is the last resort; stderr is all that is left.
      console.error(`Cannot hand alert ${alert.id} to the fallback: ${message(cause)}`);
    }
  }

  #depth(endpoint: Endpoint): void {
    this.#metrics?.callbackQueueDepth.set(
      { endpoint: endpoint.key },
      endpoint.queue.length + endpoint.inFlight,
    );
  }
}

function positive(name: string, value: number): number {
  if (!(value > 0)) throw new RangeError(`Cannot use ${name} ${value}: must be positive`);
  return value;
}
