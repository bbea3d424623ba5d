/**
 * A watch transport for client-node's `ListWatch` built on Deno's own `fetch`, so that every end
 * of a watch reaches `ListWatch` and it reconnects.
 *
 * Why not client-node's `Watch`: it reads the response through Node stream shims and aborts an
 * idle request after 30 s; under Deno neither that abort nor a connection the API server drops
 * ever reaches its `done` callback, so the list-watch stops listening without a word (measured:
 * a policy created after 30 s of silence, or after an API server restart, was seen only at the
 * next periodic relist, minutes later). Here the stream is read with a plain reader: the end of
 * the body, a read error and our own inactivity deadline each call `done` exactly once.
 *
 * Every request asks the API server to end the watch after a randomised `timeoutSeconds` (as
 * client-go does) and to send bookmarks, so a quiet watch still ends cleanly and restarts from its
 * resource version; a half-open connection (a node cut off without a FIN) is given up when
 * nothing arrived for that timeout plus a grace period.
 *
 * @module
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { HttpClients, type HttpsMaterial, setBasicAuth } from "./deno_http.ts";

/** A watch that ends cleanly sooner than this, having received nothing, counts as failed. */
const MIN_CLEAN_WATCH_MS = 1000;

/** The callback `ListWatch` gives for each watch event. */
export type WatchEventCallback = (phase: string, object: unknown, event: unknown) => void;

/** What `ListWatch` calls when a watch ends: `null` for a clean end, else the error. */
export type WatchDoneCallback = (error: unknown) => void;

/** Options of {@linkcode NativeWatch}. */
export interface NativeWatchOptions {
  /** Shortest server-side watch timeout; each request picks one in [min, max]. Default 240 s. */
  minTimeoutSeconds?: number;
  /** Longest server-side watch timeout. Default 300 s. */
  maxTimeoutSeconds?: number;
  /** How long past its timeout a silent watch is given before it is abandoned. Default 30 s. */
  graceSeconds?: number;
}

/**
 * Raised (through `done`) when a watch gave nothing for its whole deadline. Its name makes
 * `ListWatch` reconnect at once from the last resource version, like a server-side end.
 */
export class WatchTimeoutError extends Error {
  /** The name `ListWatch` recognises for an immediate, error-free reconnect. */
  override readonly name = "TimeoutError";
}

/** A watch request that failed with an HTTP status, shaped as `ListWatch` reads it. */
export class WatchStatusError extends Error {
  /** The HTTP status; `ListWatch` relists from scratch on 410 Gone. */
  readonly statusCode: number;

  /**
   * @param statusCode The response status.
   * @param message The status line and the start of the body.
   */
  constructor(statusCode: number, message: string) {
    super(message);
    this.name = "WatchStatusError";
    this.statusCode = statusCode;
  }
}

/** The `watch()` half of client-node's `Watch`, over Deno's fetch. */
export class NativeWatch {
  readonly #kubeConfig: KubeConfig;
  readonly #minTimeout: number;
  readonly #maxTimeout: number;
  readonly #graceMs: number;
  /** Reused by every request, never closed under one in flight (see deno_http.ts). */
  readonly #clients = new HttpClients();

  /**
   * @param kubeConfig Server, credentials and CA; read again for every request (tokens rotate).
   * @param options Server-side timeouts and the inactivity grace.
   * @throws {RangeError} When the timeouts are not 1 <= min <= max or the grace is negative.
   */
  constructor(kubeConfig: KubeConfig, options: NativeWatchOptions = {}) {
    this.#kubeConfig = kubeConfig;
    this.#minTimeout = options.minTimeoutSeconds ?? 240;
    this.#maxTimeout = options.maxTimeoutSeconds ?? 300;
    const grace = options.graceSeconds ?? 30;
    if (!(this.#minTimeout >= 1 && this.#maxTimeout >= this.#minTimeout && grace >= 0)) {
      throw new RangeError(
        `watch timeouts need 1 <= minTimeoutSeconds <= maxTimeoutSeconds and graceSeconds >= 0, ` +
          `got ${this.#minTimeout}, ${this.#maxTimeout}, ${grace}`,
      );
    }
    this.#graceMs = grace * 1000;
  }

  /**
   * Starts one watch request; events go to `callback`, its end to `done` (once, unless the
   * returned controller aborted it: the caller already knows).
   *
   * @param path The watch path, such as `/api/v1/pods`.
   * @param queryParams What `ListWatch` adds: resourceVersion and selectors.
   * @param callback Called with each event's type, object and the whole event.
   * @param done Called once when the watch ends.
   * @returns A controller whose `abort()` ends the request silently.
   */
  async watch(
    path: string,
    queryParams: Record<string, unknown>,
    callback: WatchEventCallback,
    done: WatchDoneCallback,
  ): Promise<AbortController> {
    const controller = new AbortController();
    const cluster = this.#kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig has no current cluster");
    const timeoutSeconds = this.#minTimeout +
      Math.floor(Math.random() * (this.#maxTimeout - this.#minTimeout + 1));
    const url = new URL(cluster.server + path);
    url.searchParams.set("watch", "true");
    url.searchParams.set("allowWatchBookmarks", "true");
    url.searchParams.set("timeoutSeconds", String(timeoutSeconds));
    for (const [key, value] of Object.entries(queryParams)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const material: HttpsMaterial = {};
    await this.#kubeConfig.applyToHTTPSOptions(material as never);
    const client = this.#clients.for(material);

    let ended = false;
    const end = (error: unknown) => {
      if (ended) return;
      ended = true;
      clearTimeout(deadline);
      if (!controller.signal.aborted) {
        controller.abort();
        done(error);
      }
    };
    // Nothing at all for the server's timeout plus the grace: the connection is dead.
    let deadline = setTimeout(() => {}, 0);
    const rearm = () => {
      clearTimeout(deadline);
      deadline = setTimeout(
        () => end(new WatchTimeoutError(`watch ${path}: nothing received for ${timeoutSeconds}s`)),
        timeoutSeconds * 1000 + this.#graceMs,
      );
    };
    controller.signal.addEventListener("abort", () => {
      ended = true;
      clearTimeout(deadline);
    });
    rearm();
    const startedAt = Date.now();
    let received = false;
    const onData = () => {
      received = true;
      rearm();
    };
    this.#read(url, material, client, controller.signal, callback, onData).then(
      () => {
        // A clean end (the server's timeout) reconnects at once from the resource version.
        // One that came at once with nothing in it (a server shutting down) is an error, so
        // that the caller backs off instead of reconnecting in a tight loop.
        const quick = !received && Date.now() - startedAt < MIN_CLEAN_WATCH_MS;
        end(
          quick
            ? new Error(`watch ${path} ended at once with nothing received`)
            : new WatchTimeoutError(`watch ${path} ended by the server`),
        );
      },
      (error) => end(error),
    );
    return controller;
  }

  async #read(
    url: URL,
    material: HttpsMaterial,
    client: Deno.HttpClient | undefined,
    signal: AbortSignal,
    callback: WatchEventCallback,
    onActivity: () => void,
  ): Promise<void> {
    const headers = new Headers(material.headers ?? {});
    headers.set("Accept", "application/json");
    setBasicAuth(headers, material);
    const response = await fetch(url, { headers, signal, client });
    if (response.status !== 200) {
      const body = (await response.text().catch(() => "")).slice(0, 300);
      throw new WatchStatusError(
        response.status,
        `watch ${url.pathname}: HTTP ${response.status} ${response.statusText} ${body}`.trim(),
      );
    }
    if (!response.body) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = "";
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      onActivity();
      pending += value;
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line) deliver(line, callback);
      }
    }
  }
}

/** Parses one watch line; a line that is not an event is skipped (the stream goes on). */
function deliver(line: string, callback: WatchEventCallback): void {
  let event: { type?: unknown; object?: unknown };
  try {
    event = JSON.parse(line);
  } catch {
    return;
  }
  if (typeof event?.type === "string") callback(event.type, event.object, event);
}
