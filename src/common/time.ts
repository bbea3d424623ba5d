/**
 * Time as the agent writes it everywhere (alerts, log lines, status, conditions): RFC 3339 in
 * UTC with whole seconds, the form Kubernetes uses for `metav1.Time`.
 *
 * @module
 */

/**
 * Formats a time as RFC 3339 with whole seconds, e.g. `2026-12-03T17:21:30Z`.
 *
 * @param time A Date or milliseconds since the epoch; now by default.
 * @returns The text.
 */
export function rfc3339(time: Date | number = Date.now()): string {
  const date = typeof time === "number" ? new Date(time) : time;
  return date.toISOString().replace(/\.\d+Z$/, "Z");
}
