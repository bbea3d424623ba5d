/**
 * Summaries of repeated measurements: min, median, max and percentiles.
 *
 * @module
 */

/** Min, median and max of a sample, and its size. */
export interface Summary {
  n: number;
  min: number;
  median: number;
  max: number;
}

/**
 * The p-th percentile (0-100) by the nearest-rank method on a sorted copy.
 *
 * @param values the sample
 * @param p the percentile
 * @returns NaN for an empty sample
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/**
 * Summarises a sample.
 *
 * @param values the sample
 * @returns min, median, max (NaN when empty)
 */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { n: 0, min: NaN, median: NaN, max: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { n: sorted.length, min: sorted[0], median, max: sorted[sorted.length - 1] };
}

/** Formats a number with `digits` decimals, or "n/a". */
export function fmt(value: number | undefined, digits = 0): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  return value.toFixed(digits);
}

/** Formats a summary as `median (min-max)`. */
export function fmtSummary(s: Summary, digits = 0): string {
  if (s.n === 0) return "n/a";
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}-${fmt(s.max, digits)})`;
}
