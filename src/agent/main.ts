/**
 * `kivebpf agent`: wires the node agent together from command-line flags and the environment
 * the DaemonSet provides (NODE_NAME and POD_NAMESPACE from the downward API).
 *
 * @module
 */
import type { AlertFormat } from "../delivery/mod.ts";
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
} from "@kubernetes/client-node";
import { AlertSink, createAgentMetrics, serveMetrics, type StdoutFormat } from "../delivery/mod.ts";
import { openEngine } from "../engine/mod.ts";
import { loadKubeConfig } from "../kube/mod.ts";
import { serveWebhooks, WebhookCertManager } from "../webhook/mod.ts";
import { NodeAgent } from "./agent.ts";
import { checkAgentFlags, parseFlags } from "./config.ts";
import { liveness, readiness } from "./health.ts";
import { createLogger, type LogLevel } from "./log.ts";
import { ContainerTrapPlanter } from "./planter.ts";
import { LabelledSecrets } from "./labelled_secrets.ts";
import { DECOY_SECRET_LABEL, TrapContent } from "./trap_content.ts";

/** Usage text of the agent command. */
export const AGENT_USAGE = `kivebpf agent [options]
  --node NAME            node name (default: $NODE_NAME)
  --namespace NS         namespace of Leases and registration ConfigMaps (default: $POD_NAMESPACE or kivebpf-system)
  --kubeconfig FILE      kubeconfig (default: in-cluster, then $KUBECONFIG)
  --backend B            auto (default), lsm, fentry, kprobe or tracepoint
  --max-traps N          size of the kernel trap map (default 65536)
  --output FORMAT        text (default: "<time> INFO Access Detected {json}") or json (one JSON object per line)
  --alert-format F       shape of alerts on stdout and callbacks: kive (default, {"KiveAlert": ...}), falco
                         (what falcosidekick takes) or cloudevents (CloudEvents 1.0); a trap's callbackFormat wins
  --metrics-port N       Prometheus metrics, /readyz and /healthz (default 9090; 0 disables)
  --proc DIR             the host's procfs (default /proc)
  --kernel-id ID         override /proc/sys/kernel/random/boot_id (tests)
  --lease-seconds N      Lease duration (default 15)
  --bpf-pin-dir DIR      bpffs directory where the leader pins its programs and maps so that traps
                         stay armed across restarts and takeovers (default /sys/fs/bpf/kivebpf;
                         "" runs unpinned)
  --log-level L          debug, info (default), warn, error
  --webhook-port N       serve the conversion and validating webhooks over TLS (default 0: off)
  --webhook-service S    the webhook Service, for self-managed certificates (default kivebpf-webhook)
  --webhook-cert-file F  serve with this PEM certificate instead (cert-manager); reloaded on change
  --webhook-key-file F   its private key
  --cgroup-root DIR      the host's cgroup2 mount (default: /sys/fs/cgroup or /sys/fs/cgroup/unified)
  --cgroup-filter        only check processes in trapped containers' cgroups (cheaper; misses
                         accesses from outside them, e.g. the host)
  --callback-timeout-seconds N  timeout of one callback request (default 10)
  --callback-retry-seconds N    how long an alert is retried before it goes to stdout with the
                         error (default 300)
  --verify-seconds N     re-check every planted trap file this often (default 60); changes are
                         seen at once through inotify, this is the safety net
  --no-watch-trap-files  do not watch trap files with inotify (changes are then seen only at
                         verification)`;

/** A kernel id as a bpffs name: bpffs refuses dots, and a path separator would escape. */
function pinName(kernelId: string): string {
  return kernelId.replace(/[^A-Za-z0-9_-]/g, "_");
}

/**
 * Runs the agent until SIGTERM or SIGINT.
 *
 * @param args Arguments after `agent`.
 * @returns The exit code.
 */
export async function runAgent(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    node: { type: "string", default: Deno.env.get("NODE_NAME") },
    namespace: { type: "string", default: Deno.env.get("POD_NAMESPACE") ?? "kivebpf-system" },
    kubeconfig: { type: "string" },
    backend: { type: "string", default: "auto" },
    "max-traps": { type: "string", default: "65536" },
    output: { type: "string", default: "text" },
    "alert-format": { type: "string", default: "kive" },
    "metrics-port": { type: "string", default: "9090" },
    proc: { type: "string", default: "/proc" },
    "kernel-id": { type: "string" },
    "lease-seconds": { type: "string", default: "15" },
    "bpf-pin-dir": { type: "string", default: "/sys/fs/bpf/kivebpf" },
    "log-level": { type: "string", default: "info" },
    "webhook-port": { type: "string", default: "0" },
    "webhook-service": { type: "string", default: "kivebpf-webhook" },
    "webhook-cert-file": { type: "string" },
    "webhook-key-file": { type: "string" },
    "cgroup-root": { type: "string" },
    "cgroup-filter": { type: "boolean", default: false },
    "verify-seconds": { type: "string", default: "60" },
    "callback-timeout-seconds": { type: "string", default: "10" },
    "callback-retry-seconds": { type: "string", default: "300" },
    "no-watch-trap-files": { type: "boolean", default: false },
  });
  if (!parsed.ok) {
    for (const problem of parsed.problems) console.error(`agent: ${problem}`);
    console.error(`\n${AGENT_USAGE}`);
    return 2;
  }
  const { values } = parsed;
  const checked = checkAgentFlags(values);
  if (!checked.ok) {
    for (const problem of checked.problems) console.error(`agent: ${problem}`);
    console.error(`\n${AGENT_USAGE}`);
    return 2;
  }
  const { flags } = checked;
  const log = createLogger(flags["log-level"] as LogLevel);
  const backend = flags.backend;
  const kernelId = values["kernel-id"] ??
    (await Deno.readTextFile(`${values.proc}/sys/kernel/random/boot_id`)).trim();
  const kubeConfig = loadKubeConfig(values.kubeconfig);
  const metrics = createAgentMetrics();
  const sink = new AlertSink({
    stdout: { format: flags.output as StdoutFormat },
    metrics,
    callbacks: {
      timeoutMs: flags["callback-timeout-seconds"] * 1000,
      retryBudgetMs: flags["callback-retry-seconds"] * 1000,
    },
  });
  const core = kubeConfig.makeApiClient(CoreV1Api);
  // secretKeyRef content: labelled Secrets of the agent's namespace only (see trap_content.ts).
  const content = new TrapContent({
    secrets: new LabelledSecrets({
      core,
      namespace: flags.namespace,
      label: DECOY_SECRET_LABEL,
      what: "decoy content Secret",
      log,
    }),
  });
  let writesConditions = () => true;
  const agent = new NodeAgent({
    writesPolicyConditions: () => writesConditions(),
    nodeName: flags.node,
    namespace: flags.namespace,
    kernelId,
    apis: {
      kubeConfig,
      core,
      custom: kubeConfig.makeApiClient(CustomObjectsApi),
      coordination: kubeConfig.makeApiClient(CoordinationV1Api),
      events: kubeConfig.makeApiClient(EventsV1Api),
    },
    planter: new ContainerTrapPlanter({
      procRoot: values.proc,
      cgroupRoot: values["cgroup-root"],
      watch: !values["no-watch-trap-files"],
      content,
      onWatchProblem: (message) =>
        log.warn("trap files are not all watched; changes to them are seen at verification", {
          error: message,
        }),
    }),
    output: sink,
    alertFormat: flags["alert-format"] as AlertFormat,
    openEngine: () =>
      openEngine({
        backend,
        maxTraps: flags["max-traps"],
        // One directory per kernel: bpffs instances may be shared by nodes of one kernel.
        pinDir: flags["bpf-pin-dir"] ? `${flags["bpf-pin-dir"]}/${pinName(kernelId)}` : undefined,
      }),
    log,
    metrics,
    leaseSeconds: flags["lease-seconds"],
    cgroupFilter: values["cgroup-filter"],
    verifySeconds: flags["verify-seconds"],
  });
  const stopping = new AbortController();
  // Filled in once the webhooks start (after the metrics server, which serves the probes).
  const webhookState: { serving?: () => boolean } = {};
  const judge = (probe: "ready" | "live") => {
    const report = { ...agent.healthReport(), webhookReady: webhookState.serving?.() };
    const verdict = probe === "ready" ? readiness(report) : liveness(report);
    metrics.probeOk.set({ probe }, verdict.ok ? 1 : 0);
    return verdict;
  };
  // Probes answer from the same verdicts the metric shows; the timer keeps the metric current.
  const probeTimer = setInterval(() => (judge("ready"), judge("live")), 5_000);
  const metricsPort = flags["metrics-port"];
  const metricsServer = metricsPort > 0
    ? serveMetrics(metrics.registry, {
      port: metricsPort,
      signal: stopping.signal,
      probes: { "/readyz": () => judge("ready"), "/healthz": () => judge("live") },
    })
    : undefined;
  const stop = () => stopping.abort();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  const webhooks = await startWebhooks(
    {
      "webhook-port": values["webhook-port"],
      "webhook-service": values["webhook-service"],
      "webhook-cert-file": values["webhook-cert-file"],
      "webhook-key-file": values["webhook-key-file"],
      namespace: flags.namespace,
      node: flags.node,
    },
    kubeConfig,
    log,
    stopping.signal,
  );
  writesConditions = webhooks?.leading ?? (() => true);
  webhookState.serving = webhooks?.serving;
  await agent.start();
  await new Promise((resolve) =>
    stopping.signal.addEventListener("abort", resolve, { once: true })
  );
  log.info("stopping");
  clearInterval(probeTimer);
  await agent.stop();
  await webhooks?.stop();
  await sink.close();
  await metricsServer?.finished;
  Deno.removeSignalListener("SIGTERM", stop);
  Deno.removeSignalListener("SIGINT", stop);
  return 0;
}

/** Serves the webhooks with a certificate from files (cert-manager) or from the managed Secret. */
async function startWebhooks(
  values: Record<string, string | undefined>,
  kubeConfig: ReturnType<typeof loadKubeConfig>,
  log: ReturnType<typeof createLogger>,
  signal: AbortSignal,
): Promise<
  { stop(): Promise<void>; leading?: () => boolean; serving: () => boolean } | undefined
> {
  const port = Number(values["webhook-port"] ?? "0");
  if (!(port > 0)) return undefined;
  let server: Deno.HttpServer | undefined;
  let chain = Promise.resolve();
  const serve = (cert: string, key: string) => {
    chain = chain.then(async () => {
      await server?.shutdown();
      server = serveWebhooks({
        port,
        cert,
        key,
        onError: (error) => log.warn("webhook request failed", { error: String(error) }),
      });
      log.info("webhooks serving", { port });
    }).catch((error) => log.error("cannot serve webhooks", { error: String(error) }));
  };
  const certFile = values["webhook-cert-file"];
  const keyFile = values["webhook-key-file"];
  if (certFile && keyFile) {
    let last = "";
    const reload = async () => {
      const [cert, key] = await Promise.all([
        Deno.readTextFile(certFile),
        Deno.readTextFile(keyFile),
      ]);
      if (cert !== last) {
        last = cert;
        serve(cert, key);
      }
    };
    await reload();
    const timer = setInterval(
      () =>
        reload().catch((error) =>
          log.warn("cannot reload webhook certificate", { error: String(error) })
        ),
      60_000,
    );
    signal.addEventListener("abort", () => clearInterval(timer), { once: true });
    return {
      serving: () => server !== undefined,
      stop: async () => {
        clearInterval(timer);
        await chain;
        await server?.shutdown();
      },
    };
  }
  const manager = new WebhookCertManager({
    apis: {
      kubeConfig,
      core: kubeConfig.makeApiClient(CoreV1Api),
      coordination: kubeConfig.makeApiClient(CoordinationV1Api),
      apiextensions: kubeConfig.makeApiClient(ApiextensionsV1Api),
      admission: kubeConfig.makeApiClient(AdmissionregistrationV1Api),
    },
    namespace: values.namespace ?? "kivebpf-system",
    service: values["webhook-service"] ?? "kivebpf-webhook",
    identity: values.node ?? "",
    onCertificate: serve,
    onError: (what, error) =>
      log.warn(`${what} failed`, { error: String((error as Error)?.message ?? error) }),
  });
  await manager.start();
  return {
    serving: () => server !== undefined,
    leading: () => manager.leading,
    stop: async () => {
      await manager.stop();
      await chain;
      await server?.shutdown();
    },
  };
}
