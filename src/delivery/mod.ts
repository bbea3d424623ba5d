/**
 * Alert delivery: stdout lines, HTTP callbacks with retries and a stdout fallback, and the
 * agent's Prometheus metrics.
 *
 * The agent makes one {@linkcode AlertSink} and calls {@linkcode AlertSink.deliver} once per
 * alert. An alert without a callback is one stdout line:
 *
 * ```text
 * 2025-08-02T16:51:19Z	INFO	Access Detected	{"KiveAlert":{"kive-alert-version":"v1",...}}
 * ```
 *
 * or with the `json` format `{"level":"info","msg":"Access Detected","KiveAlert":{...}}`. An
 * alert with a callback is POSTed as `{"KiveAlert":{...}}` with `Kive-Alert-Id`; if that fails
 * for good, the stdout line has level `ERROR`/`error` and the fields `error` and `callback`.
 *
 * @example
 * ```ts
 * import { AlertSink, createAgentMetrics, type KiveAlert, serveMetrics } from "./mod.ts";
 *
 * declare const alert: KiveAlert; // from src/agent/alert.ts's buildAlert()
 *
 * const metrics = createAgentMetrics();
 * const server = serveMetrics(metrics.registry, { port: 9090 });
 * const sink = new AlertSink({ metrics });
 * sink.deliver({
 *   id: crypto.randomUUID(),
 *   body: alert,
 *   callback: { url: "http://callback-service:9376/ingest" },
 * });
 * await sink.close({ timeoutMs: 5000 });
 * await server.shutdown();
 * ```
 *
 * @module
 */
export { type Alert, AlertSink, type AlertSinkOptions } from "./alert_sink.ts";
export {
  alertPolicy,
  type KiveAlert,
  type KiveAlertMetadata,
  type KiveAlertPod,
  type KiveAlertProcess,
  type KiveAlertV1,
  type KiveAlertV2alpha1,
  type KiveLossAlert,
} from "./kive_alert.ts";
export {
  type CallbackAlert,
  CallbackDispatcher,
  type CallbackDispatcherOptions,
  type CallbackFailure,
  type CallbackFailureReason,
  type CallbackTarget,
} from "./callbacks.ts";
export {
  type DeliveryFailure,
  formatAlertLine,
  type StdoutFormat,
  StdoutSink,
  type StdoutSinkOptions,
} from "./stdout.ts";
export {
  type AgentMetrics,
  Counter,
  createAgentMetrics,
  Gauge,
  type Labels,
  Metric,
  METRIC_NAMES,
  METRICS_CONTENT_TYPE,
  type MetricsServerOptions,
  Registry,
  serveMetrics,
} from "./metrics.ts";
export {
  ALERT_FORMATS,
  type AlertFormat,
  alertPayload,
  CLOUDEVENT_TYPES,
  payloadContentType,
} from "./alert_formats.ts";
