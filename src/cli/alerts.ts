/**
 * `kivebpf alerts`: every alert the agents printed, from all agent pods in one stream, instead
 * of "check the standard output of all the kive pods". Reads the agents' logs through the API
 * server, picks the alert lines (any `--output` and `--alert-format`), filters and merges them.
 * Alerts sent to a trap's callback are not in the logs (unless the callback failed).
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { KiveAlert } from "../delivery/mod.ts";
import { loadKubeConfig } from "../kube/mod.ts";
import { ApiReader } from "./_api.ts";

/** Usage of the command. */
export const ALERTS_USAGE =
  `Usage: kivebpf alerts [-f] [--since 1h] [--policy P] [--namespace NS] [--pod POD] [-o pretty|json]
  Every KiveAlert the agents printed, merged from all agent pods, oldest first.
  -f, --follow         keep printing alerts as they come
  --since D            only alerts of the last D (30s, 10m, 2h; default 1h)
  --policy P           only alerts of this policy (name, or namespace/name)
  --namespace NS       only alerts from pods of this namespace
  --pod POD            only alerts from this pod
  -o, --output F       pretty (default: one line per alert) or json (one KiveAlert per line)
  --agent-namespace NS where the agents run (default kivebpf-system)
  --kubeconfig FILE    the kubeconfig (default: $KUBECONFIG or ~/.kube/config)`;

/** What to keep. */
export interface AlertFilter {
  policy?: string;
  namespace?: string;
  pod?: string;
}

/**
 * The alert an agent's log line holds, if any: `{"KiveAlert": ...}` lines of either `--output`,
 * and CloudEvents (their `data`); Falco payloads are turned back into nothing here, as they carry
 * no KiveAlert (use the kive or cloudevents format to read alerts with this command).
 *
 * @param line One log line.
 */
export function alertOfLine(line: string): KiveAlert | undefined {
  const start = line.indexOf("{");
  if (start < 0) return undefined;
  let object: Record<string, unknown>;
  try {
    object = JSON.parse(line.slice(start));
  } catch {
    return undefined;
  }
  if (object.KiveAlert && typeof object.KiveAlert === "object") {
    return object.KiveAlert as KiveAlert;
  }
  if (object.specversion === "1.0" && object.data && typeof object.data === "object") {
    return object.data as KiveAlert;
  }
  return undefined;
}

/** Whether an alert passes the filter. */
export function keepAlert(alert: KiveAlert, filter: AlertFilter): boolean {
  if (filter.pod !== undefined && alert.pod.name !== filter.pod) return false;
  if (filter.namespace !== undefined && alert.pod.namespace !== filter.namespace) return false;
  if (filter.policy !== undefined) {
    const namespace = "kive-policy-namespace" in alert ? alert["kive-policy-namespace"] : "";
    const [first, second] = filter.policy.split("/");
    const matches = second === undefined
      ? alert["kive-policy-name"] === first
      : alert["kive-policy-name"] === second && (namespace === "" || namespace === first);
    if (!matches) return false;
  }
  return true;
}

/** Sort key: the access time in ns where the alert has it, else its second. */
function timeOf(alert: KiveAlert): bigint {
  if ("timestamp-ns" in alert) return BigInt(alert["timestamp-ns"]);
  return BigInt(Date.parse(alert.timestamp)) * 1_000_000n;
}

/** Merges alerts from several agents: oldest first, each once. */
export function mergeAlerts(lists: readonly (readonly KiveAlert[])[]): KiveAlert[] {
  const seen = new Set<string>();
  const all: KiveAlert[] = [];
  for (const alert of lists.flat()) {
    const key = "alert-id" in alert && alert["alert-id"]
      ? alert["alert-id"]
      : JSON.stringify(alert);
    if (seen.has(key)) continue;
    seen.add(key);
    all.push(alert);
  }
  return all.sort((a, b) => (timeOf(a) < timeOf(b) ? -1 : timeOf(a) > timeOf(b) ? 1 : 0));
}

/** One readable line: when, where, who, what. */
export function formatAlert(alert: KiveAlert): string {
  const where = `${alert.pod.namespace}/${alert.pod.name} (${alert.pod.container.name}) on ` +
    alert.node.name;
  const policy = "kive-policy-namespace" in alert && alert["kive-policy-namespace"]
    ? `${alert["kive-policy-namespace"]}/${alert["kive-policy-name"]}`
    : alert["kive-policy-name"];
  if ("lost-accesses" in alert) {
    return `${alert.timestamp}  ${where}: ${alert["lost-accesses"]} access(es) to ` +
      `${alert.metadata.path} lost  [policy ${policy}]`;
  }
  const process = alert.process;
  const command = [process.binary, process.arguments].filter((p) => p).join(" ");
  const decoy = "decoy" in alert && alert.decoy ? `  [decoy ${alert.decoy.id}]` : "";
  return `${alert.timestamp}  ${where}: ${command} (pid ${process.tgid}, uid ${process.uid}) ` +
    `opened ${alert.metadata.path}  [policy ${policy}]${decoy}`;
}

/** Parses `30s`, `10m`, `2h` into seconds. */
export function parseDuration(text: string): number | undefined {
  const match = text.match(/^(\d+)(s|m|h)$/);
  if (!match) return undefined;
  return Number(match[1]) * { s: 1, m: 60, h: 3600 }[match[2] as "s" | "m" | "h"];
}

async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
    }
  }
  if (buffer) yield buffer;
}

/**
 * Runs `kivebpf alerts`.
 *
 * @param args The arguments after `alerts`.
 * @returns The exit code: 0, 1 when the agents' logs cannot be read, 2 for bad usage.
 */
export async function runAlerts(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        follow: { type: "boolean", short: "f", default: false },
        since: { type: "string", default: "1h" },
        policy: { type: "string" },
        namespace: { type: "string" },
        pod: { type: "string" },
        output: { type: "string", short: "o", default: "pretty" },
        "agent-namespace": { type: "string", default: "kivebpf-system" },
        kubeconfig: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    console.error(`alerts: ${(error as Error).message}\n${ALERTS_USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(ALERTS_USAGE);
    return 0;
  }
  const since = parseDuration(values.since);
  if (since === undefined || !["pretty", "json"].includes(values.output)) {
    const problem = since === undefined
      ? `--since must be a number and s, m or h (30s, 10m, 2h), got "${values.since}"`
      : "-o must be pretty or json";
    console.error(`alerts: ${problem}\n${ALERTS_USAGE}`);
    return 2;
  }
  const filter: AlertFilter = {
    policy: values.policy,
    namespace: values.namespace,
    pod: values.pod,
  };
  const print = (alert: KiveAlert) =>
    console.log(values.output === "json" ? JSON.stringify(alert) : formatAlert(alert));
  const api = new ApiReader(loadKubeConfig(values.kubeconfig));
  const ns = encodeURIComponent(values["agent-namespace"]);
  let pods: string[];
  try {
    const list = await api.json<{ items: { metadata: { name: string } }[] }>(
      `/api/v1/namespaces/${ns}/pods?labelSelector=${
        encodeURIComponent("app.kubernetes.io/component=agent")
      }`,
    );
    pods = list.items.map((p) => p.metadata.name);
  } catch (error) {
    console.error(`alerts: cannot list the agent pods: ${(error as Error).message}`);
    return 1;
  }
  const logPath = (pod: string) =>
    `/api/v1/namespaces/${ns}/pods/${
      encodeURIComponent(pod)
    }/log?container=agent&sinceSeconds=${since}` +
    (values.follow ? "&follow=true" : "");
  const readPod = async (pod: string, onAlert: (alert: KiveAlert) => void) => {
    const response = await api.get(logPath(pod));
    for await (const line of lines(response.body!)) {
      const alert = alertOfLine(line);
      if (alert && keepAlert(alert, filter)) onAlert(alert);
    }
  };
  try {
    if (values.follow) {
      // As they come, from every agent at once (until interrupted).
      await Promise.all(pods.map((pod) => readPod(pod, print)));
    } else {
      const lists = await Promise.all(pods.map(async (pod) => {
        const found: KiveAlert[] = [];
        await readPod(pod, (alert) => found.push(alert));
        return found;
      }));
      for (const alert of mergeAlerts(lists)) print(alert);
    }
  } catch (error) {
    console.error(`alerts: ${(error as Error).message}`);
    return 1;
  }
  return 0;
}
