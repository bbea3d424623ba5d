/**
 * `kivebpf agent`: wires the node agent together from command-line flags and the environment
 * the DaemonSet provides (NODE_NAME and POD_NAMESPACE from the downward API).
 *
 * @module
 */
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
} from "@kubernetes/client-node";
import { parseArgs } from "node:util";
import { AlertSink, createAgentMetrics, serveMetrics, type StdoutFormat } from "../delivery/mod.ts";
import { type Backend, BACKENDS, openEngine } from "../engine/mod.ts";
import { loadKubeConfig } from "../kube/mod.ts";
import { NodeAgent } from "./agent.ts";
import { createLogger, type LogLevel } from "./log.ts";
import { ContainerTrapPlanter } from "./planter.ts";

/** Usage text of the agent command. */
export const AGENT_USAGE = `kivebpf agent [options]
  --node NAME            node name (default: $NODE_NAME)
  --namespace NS         namespace of Leases and registration ConfigMaps (default: $POD_NAMESPACE or kivebpf-system)
  --kubeconfig FILE      kubeconfig (default: in-cluster, then $KUBECONFIG)
  --backend B            auto (default), lsm, fentry, kprobe or tracepoint
  --max-traps N          size of the kernel trap map (default 65536)
  --output FORMAT        text (default: "<time> INFO Access Detected {json}") or json (one JSON object per line)
  --metrics-port N       Prometheus metrics and /healthz (default 9090; 0 disables)
  --proc DIR             the host's procfs (default /proc)
  --kernel-id ID         override /proc/sys/kernel/random/boot_id (tests)
  --lease-seconds N      Lease duration (default 15)
  --log-level L          debug, info (default), warn, error`;

/**
 * Runs the agent until SIGTERM or SIGINT.
 *
 * @param args Arguments after `agent`.
 * @returns The exit code.
 */
export async function runAgent(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      node: { type: "string", default: Deno.env.get("NODE_NAME") },
      namespace: { type: "string", default: Deno.env.get("POD_NAMESPACE") ?? "kivebpf-system" },
      kubeconfig: { type: "string" },
      backend: { type: "string", default: "auto" },
      "max-traps": { type: "string", default: "65536" },
      output: { type: "string", default: "text" },
      "metrics-port": { type: "string", default: "9090" },
      proc: { type: "string", default: "/proc" },
      "kernel-id": { type: "string" },
      "lease-seconds": { type: "string", default: "15" },
      "log-level": { type: "string", default: "info" },
    },
  });
  const log = createLogger(values["log-level"] as LogLevel);
  if (!values.node) {
    console.error(`agent: --node or $NODE_NAME is required\n\n${AGENT_USAGE}`);
    return 2;
  }
  const backend = values.backend as Backend | "auto";
  if (backend !== "auto" && !BACKENDS.includes(backend)) {
    console.error(
      `agent: --backend must be auto or one of ${BACKENDS.join(", ")}, got "${backend}"`,
    );
    return 2;
  }
  if (values.output !== "text" && values.output !== "json") {
    console.error(`agent: --output must be text or json, got "${values.output}"`);
    return 2;
  }
  const kernelId = values["kernel-id"] ??
    (await Deno.readTextFile(`${values.proc}/sys/kernel/random/boot_id`)).trim();
  const kubeConfig = loadKubeConfig(values.kubeconfig);
  const metrics = createAgentMetrics();
  const sink = new AlertSink({ stdout: { format: values.output as StdoutFormat }, metrics });
  const agent = new NodeAgent({
    nodeName: values.node,
    namespace: values.namespace,
    kernelId,
    apis: {
      kubeConfig,
      core: kubeConfig.makeApiClient(CoreV1Api),
      custom: kubeConfig.makeApiClient(CustomObjectsApi),
      coordination: kubeConfig.makeApiClient(CoordinationV1Api),
      events: kubeConfig.makeApiClient(EventsV1Api),
    },
    planter: new ContainerTrapPlanter({ procRoot: values.proc }),
    output: sink,
    openEngine: () => openEngine({ backend, maxTraps: Number(values["max-traps"]) }),
    log,
    metrics,
    leaseSeconds: Number(values["lease-seconds"]),
  });
  const stopping = new AbortController();
  const metricsPort = Number(values["metrics-port"]);
  const metricsServer = metricsPort > 0
    ? serveMetrics(metrics.registry, { port: metricsPort, signal: stopping.signal })
    : undefined;
  const stop = () => stopping.abort();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  await agent.start();
  await new Promise((resolve) =>
    stopping.signal.addEventListener("abort", resolve, { once: true })
  );
  log.info("stopping");
  await agent.stop();
  await sink.close();
  await metricsServer?.finished;
  Deno.removeSignalListener("SIGTERM", stop);
  Deno.removeSignalListener("SIGINT", stop);
  return 0;
}
