/**
 * Retry timing of callbacks: exponential backoff with jitter, and `Retry-After`.
 *
 * @module
 */

/** Parameters of {@linkcode backoffDelay}. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  initialMs: number;
  /** Cap of the doubling delay. */
  maxMs: number;
  /** Uniform random number in [0, 1). */
  random: () => number;
}

/**
 * The wait before retry number `retry` (1 for the first): `initialMs` doubling per retry up to
 * `maxMs`, then scaled by a random factor in [0.5, 1) so that alerts that failed together do
 * not retry together.
 *
 * @param retry 1-based retry number.
 * @param options Initial delay, cap and random source.
 * @returns Milliseconds to wait.
 */
export function backoffDelay(retry: number, options: BackoffOptions): number {
  const exponent = Math.min(Math.max(retry - 1, 0), 52);
  const base = Math.min(options.maxMs, options.initialMs * 2 ** exponent);
  return base / 2 + (options.random() * base) / 2;
}

/**
 * Reads a `Retry-After` header: delay-seconds or an HTTP date.
 *
 * @param value The header value, or null when absent.
 * @param now The current time in epoch milliseconds, for HTTP dates.
 * @returns Milliseconds to wait, or undefined when absent or unreadable.
 */
export function parseRetryAfter(
  value: string | null,
  now: number = Date.now(),
): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // HTTP dates start with the day name; Date.parse would also take "-1" as a year.
  if (!/^[A-Za-z]/.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Waits `ms` milliseconds, or less if `signal` aborts; never rejects, and clears its timer.
 *
 * @param ms Milliseconds.
 * @param signal Ends the wait early.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
