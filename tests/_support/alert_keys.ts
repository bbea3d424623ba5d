/**
 * The seed's KiveAlert keys, in the seed's order (../shared/seed/USAGE.md): what every test of
 * an alert's shape compares with, written out here instead of taken from the code under test.
 *
 * @module
 */

/** The top-level keys of a v1 alert, in order; v2alpha1 and loss alerts start with them. */
export const SEED_ALERT_KEYS = [
  "kive-alert-version",
  "kive-policy-name",
  "timestamp",
  "metadata",
  "custom-metadata",
  "pod",
  "node",
  "process",
] as const;
