/**
 * Writes alerts to stdout, one whole line each, through a queue so callers never wait.
 *
 * @module
 */
import { rfc3339 } from "../common/time.ts";
import type { KiveAlert } from "./kive_alert.ts";
import { type AlertFormat, alertPayload } from "./alert_formats.ts";

/**
 * The line format.
 *
 * - `text` (default): `<RFC 3339 UTC time>\t<LEVEL>\tAccess Detected\t{"KiveAlert":{...}}`, the
 *   seed's format on one line.
 * - `json`: `{"level":"info","msg":"Access Detected","KiveAlert":{...}}`.
 */
export type StdoutFormat = "text" | "json";

/** Why an alert that had a callback is written to stdout instead. */
export interface DeliveryFailure {
  /** What went wrong and the last error, e.g. `Callback failed: HTTP 503 after 7 attempts`. */
  error: string;
  /** The callback endpoint (origin and path, without query or credentials). */
  callback: string;
}

/** Options of {@linkcode StdoutSink}. */
export interface StdoutSinkOptions {
  /** The line format; `text` by default. */
  format?: StdoutFormat;
  /** Where lines go; `Deno.stdout.writable` by default (locked only while draining). */
  writable?: WritableStream<Uint8Array>;
  /**
   * Lines queued above which {@linkcode StdoutSink.write} returns false, a hint to slow down.
   * Lines are never dropped. Default 10 000.
   */
  highWaterMark?: number;
  /** The clock of the line prefix; `() => new Date()` by default. */
  now?: () => Date;
  /**
   * Called when the writable fails, with the lines that could not be written. Default: the
   * lines go to stderr with the error.
   */
  onError?: (error: Error, lines: string[]) => void;
}

const MAX_BATCH_BYTES = 64 * 1024;

/**
 * Formats one alert line, with its trailing line feed.
 *
 * @param alert The `KiveAlert` object (its keys are written in their order).
 * @param options The format, the time of the `text` prefix and an optional delivery failure,
 *   which sets the level to error and adds `error` and `callback` next to `KiveAlert`.
 * @returns The line.
 */
export function formatAlertLine(
  alert: KiveAlert,
  options: {
    format?: StdoutFormat;
    time?: Date;
    failure?: DeliveryFailure;
    shape?: { format?: AlertFormat; id: string };
  } = {},
): string {
  const { failure } = options;
  const extra = failure ? { error: failure.error, callback: failure.callback } : {};
  // In the kive shape a JSON line carries level and msg next to KiveAlert, as it always has; a
  // Falco or CloudEvents line is that object itself, as their readers expect.
  const shape = options.shape?.format ?? "kive";
  const payload = alertPayload(alert, shape, options.shape?.id ?? "");
  if (options.format === "json") {
    const level = failure ? "error" : "info";
    const head = shape === "kive" ? { level, msg: "Access Detected" } : {};
    return `${JSON.stringify({ ...head, ...payload, ...extra })}\n`;
  }
  const time = rfc3339(options.time ?? new Date());
  const level = failure ? "ERROR" : "INFO";
  return `${time}\t${level}\tAccess Detected\t${JSON.stringify({ ...payload, ...extra })}\n`;
}

/**
 * A line writer for alerts: {@linkcode StdoutSink.write} queues a line and returns at once; one
 * drain loop writes queued lines in order, whole lines per write, waiting on the writable's
 * backpressure. Lines never interleave with each other.
 *
 * @example
 * ```ts
 * const sink = new StdoutSink({ format: "json" });
 * sink.write({ "kive-alert-version": "v1" });
 * await sink.close();
 * ```
 */
export class StdoutSink {
  #format: StdoutFormat;
  #writable: WritableStream<Uint8Array>;
  #highWaterMark: number;
  #now: () => Date;
  #onError: (error: Error, lines: string[]) => void;
  #queue: string[] = [];
  #draining: Promise<void> | undefined;
  #encoder = new TextEncoder();

  /**
   * Creates a sink with nothing queued; it writes to stdout unless given another writable.
   *
   * @param options Format, destination and limits.
   * @throws {TypeError} When the format is neither `text` nor `json`.
   */
  constructor(options: StdoutSinkOptions = {}) {
    this.#format = options.format ?? "text";
    if (this.#format !== "text" && this.#format !== "json") {
      throw new TypeError(`Cannot write alerts as "${this.#format}": format is text or json`);
    }
    this.#writable = options.writable ?? Deno.stdout.writable;
    this.#highWaterMark = options.highWaterMark ?? 10_000;
    this.#now = options.now ?? (() => new Date());
    this.#onError = options.onError ?? ((error, lines) => {
      console.error(`Cannot write ${lines.length} alert line(s) to stdout: ${error.message}`);
      for (const line of lines) console.error(line.trimEnd());
    });
  }

  /** Lines queued and not yet written. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Queues one alert line.
   *
   * @param alert The `KiveAlert` object.
   * @param failure Set when the alert had a callback that did not take it.
   * @returns False once more than `highWaterMark` lines wait; the line is queued regardless.
   */
  write(
    alert: KiveAlert,
    failure?: DeliveryFailure,
    shape?: { format?: AlertFormat; id: string },
  ): boolean {
    this.#queue.push(
      formatAlertLine(alert, { format: this.#format, time: this.#now(), failure, shape }),
    );
    this.#schedule();
    return this.#queue.length <= this.#highWaterMark;
  }

  /** Resolves once every queued line has been written (or handed to `onError`). */
  async flush(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /** Flushes; the writable is left open (it is stdout). Same as {@linkcode StdoutSink.flush}. */
  close(): Promise<void> {
    return this.flush();
  }

  #schedule(): void {
    if (this.#draining) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = undefined;
      // A line queued after the loop saw an empty queue but before this ran.
      if (this.#queue.length > 0) this.#schedule();
    });
  }

  async #drain(): Promise<void> {
    let writer: WritableStreamDefaultWriter<Uint8Array>;
    try {
      writer = this.#writable.getWriter();
    } catch (cause) {
      const lines = this.#queue.splice(0);
      this.#onError(new Error("Cannot lock the alert output stream", { cause }), lines);
      return;
    }
    try {
      while (this.#queue.length > 0) {
        let batch = 0;
        let bytes = 0;
        while (batch < this.#queue.length && (batch === 0 || bytes < MAX_BATCH_BYTES)) {
          bytes += this.#queue[batch].length;
          batch++;
        }
        const lines = this.#queue.splice(0, batch);
        try {
          await writer.ready;
          await writer.write(this.#encoder.encode(lines.join("")));
        } catch (cause) {
          const error = new Error("Cannot write alert lines", { cause });
          this.#onError(error, [...lines, ...this.#queue.splice(0)]);
          return;
        }
        // Yield so a burst of writes is batched instead of one syscall per line.
        await Promise.resolve();
      }
    } finally {
      writer.releaseLock();
    }
  }
}
