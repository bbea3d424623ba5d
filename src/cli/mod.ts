/**
 * The command-line tools for people running kivebpf: `kivebpf status` and `kivebpf alerts`
 * (also `kubectl kivebpf ...` through scripts/kubectl-kivebpf).
 *
 * @module
 */
export {
  alertOfLine,
  ALERTS_USAGE,
  formatAlert,
  keepAlert,
  mergeAlerts,
  parseDuration,
  runAlerts,
} from "./alerts.ts";
export { formatStatus, runStatus, STATUS_USAGE, statusViews } from "./status.ts";
