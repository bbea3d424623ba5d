/**
 * The shapes an alert can be written in (docs/ALERTS.md):
 *
 * - `kive` (default): `{"KiveAlert": {...}}`, the seed's format;
 * - `falco`: the JSON Falco POSTs to falcosidekick, so that falcosidekick's dozens of outputs
 *   (Slack, Loki, Elasticsearch, Kafka, SIEMs) take kivebpf's alerts as they are;
 * - `cloudevents`: a CloudEvents 1.0 event in structured mode, its `data` the KiveAlert.
 *
 * @module
 */
import type { KiveAlert, KiveAlertV2alpha1, KiveLossAlert } from "./kive_alert.ts";

/** The alert formats. */
export const ALERT_FORMATS = ["kive", "falco", "cloudevents"] as const;
/** An alert format. */
export type AlertFormat = typeof ALERT_FORMATS[number];

/** The CloudEvents `type` of an access and of a loss summary. */
export const CLOUDEVENT_TYPES = {
  access: "io.github.san7o.kivebpf.trap.accessed",
  lost: "io.github.san7o.kivebpf.trap.accesses-lost",
} as const;

/** Falco's priorities, most severe first; a trap's `metadata.severity` may name one. */
const FALCO_PRIORITIES = [
  "Emergency",
  "Alert",
  "Critical",
  "Error",
  "Warning",
  "Notice",
  "Informational",
  "Debug",
] as const;

/** Common severity words mapped to Falco's priorities. */
const SEVERITY_WORDS: Record<string, string> = {
  critical: "Critical",
  high: "Error",
  medium: "Warning",
  low: "Notice",
  info: "Informational",
};

const isLoss = (alert: KiveAlert): alert is KiveLossAlert => "lost-accesses" in alert;
const isV2 = (alert: KiveAlert): alert is KiveAlertV2alpha1 =>
  alert["kive-alert-version"] === "v2alpha1" && !isLoss(alert);

/** RFC 3339 with nanoseconds, as Falco writes `time`. */
function nanoTime(alert: KiveAlert): string {
  const ns = "timestamp-ns" in alert ? BigInt(alert["timestamp-ns"]) : undefined;
  if (ns === undefined) return alert.timestamp.replace(/Z$/, ".000000000Z");
  const seconds = new Date(Number(ns / 1_000_000_000n) * 1000).toISOString().slice(0, 19);
  return `${seconds}.${(ns % 1_000_000_000n).toString().padStart(9, "0")}Z`;
}

/** The trap's severity as a Falco priority: Critical unless its metadata says otherwise. */
function priorityOf(alert: KiveAlert): string {
  if (isLoss(alert)) return "Warning";
  const severity = alert["custom-metadata"].severity ?? alert["custom-metadata"].priority ?? "";
  const named = FALCO_PRIORITIES.find((p) => p.toLowerCase() === severity.toLowerCase());
  return named ?? SEVERITY_WORDS[severity.toLowerCase()] ?? "Critical";
}

/** The container id without its runtime, and Falco's 12-character short form of it. */
function containerIds(id: string): { short: string; full: string } {
  const full = id.replace(/^[a-z-]+:\/\//, "");
  return { short: full.slice(0, 12), full };
}

function policyName(alert: KiveAlert): string {
  const namespace = "kive-policy-namespace" in alert ? alert["kive-policy-namespace"] : "";
  return namespace ? `${namespace}/${alert["kive-policy-name"]}` : alert["kive-policy-name"];
}

/**
 * The Falco payload of an alert: `time`, `rule`, `priority`, `output` (one sentence),
 * `source`, `tags`, `hostname` and `output_fields` under Falco's field names plus `kive.*`.
 */
function falcoPayload(alert: KiveAlert, id: string): Record<string, unknown> {
  const pod = `${alert.pod.namespace}/${alert.pod.name}`;
  const { short, full } = containerIds(alert.pod.container.id);
  const fields: Record<string, unknown> = {
    "k8s.ns.name": alert.pod.namespace,
    "k8s.pod.name": alert.pod.name,
    "container.id": short,
    "container.full_id": full,
    "container.name": alert.pod.container.name,
    "fd.name": alert.metadata.path,
    "kive.policy": alert["kive-policy-name"],
    "kive.alert.id": id,
    "kive.kernel.id": alert.metadata["kernel-id"],
    "kive.inode": alert.metadata.inode,
  };
  let output: string;
  if (isLoss(alert)) {
    fields["kive.lost"] = alert["lost-accesses"];
    output = `${alert["lost-accesses"]} access(es) to trap file ${alert.metadata.path} could ` +
      `not be reported one by one (kernel ring buffer full) in container ` +
      `${alert.pod.container.name} of pod ${pod} on node ${alert.node.name} ` +
      `(policy ${policyName(alert)})`;
  } else {
    const process = alert.process;
    Object.assign(fields, {
      "proc.name": process.binary,
      "proc.cmdline": [process.binary, process.arguments].filter((p) => p).join(" "),
      "proc.cwd": process.cwd,
      "proc.pid": process.tgid,
      "thread.tid": process.pid,
      "user.uid": process.uid,
      "group.gid": process.gid,
      "kive.mask": alert.metadata.mask,
    });
    const access = isV2(alert) ? alert.metadata.access : `mask ${alert.metadata.mask}`;
    if (isV2(alert)) {
      Object.assign(fields, {
        "proc.exepath": alert.process.exe,
        "proc.ppid": alert.process.ppid,
        "k8s.pod.uid": alert.pod.uid,
        "kive.policy.namespace": alert["kive-policy-namespace"],
        "kive.trap.index": alert.metadata["trap-index"],
        "kive.access": alert.metadata.access,
        "kive.action": alert.action,
        "kive.count": alert.count,
      });
      if (alert.decoy) {
        fields["kive.decoy.id"] = alert.decoy.id;
        fields["kive.decoy.kind"] = alert.decoy.kind;
      }
    }
    output = `Trap file ${alert.metadata.path} opened (${access}) by ${process.binary} ` +
      `(pid ${process.tgid}, uid ${process.uid}, cmdline ${fields["proc.cmdline"]}) in container ` +
      `${alert.pod.container.name} of pod ${pod} on node ${alert.node.name} ` +
      `(policy ${policyName(alert)})`;
  }
  for (const [key, value] of Object.entries(alert["custom-metadata"])) {
    fields[`kive.metadata.${key}`] = value;
  }
  return {
    uuid: id,
    output,
    priority: priorityOf(alert),
    rule: isLoss(alert) ? "kivebpf trap accesses lost" : "kivebpf trap file accessed",
    time: nanoTime(alert),
    source: "kivebpf",
    tags: ["kivebpf", "honeytoken", "filesystem", "mitre_credential_access"],
    hostname: alert.node.name,
    output_fields: fields,
  };
}

/** The CloudEvents 1.0 event (structured mode) of an alert. */
function cloudEvent(alert: KiveAlert, id: string): Record<string, unknown> {
  const namespace = "kive-policy-namespace" in alert ? alert["kive-policy-namespace"] : "";
  return {
    specversion: "1.0",
    type: isLoss(alert) ? CLOUDEVENT_TYPES.lost : CLOUDEVENT_TYPES.access,
    source: `/kivebpf/nodes/${encodeURIComponent(alert.node.name)}`,
    id,
    time: nanoTime(alert),
    subject: `${alert.pod.namespace}/${alert.pod.name}/${alert.pod.container.name}:` +
      alert.metadata.path,
    datacontenttype: "application/json",
    kivepolicy: namespace ? `${namespace}/${alert["kive-policy-name"]}` : alert["kive-policy-name"],
    data: alert,
  };
}

/**
 * The JSON object an alert is written as, in a format.
 *
 * @param alert The KiveAlert.
 * @param format The format.
 * @param id The alert's id (the `Kive-Alert-Id` header; the CloudEvent `id`, Falco's `uuid`).
 */
export function alertPayload(
  alert: KiveAlert,
  format: AlertFormat,
  id: string,
): Record<string, unknown> {
  switch (format) {
    case "kive":
      return { KiveAlert: alert };
    case "falco":
      return falcoPayload(alert, id);
    case "cloudevents":
      return cloudEvent(alert, id);
  }
}

/** The content type of a callback body in a format. */
export function payloadContentType(format: AlertFormat): string {
  return format === "cloudevents" ? "application/cloudevents+json" : "application/json";
}
