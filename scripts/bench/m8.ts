/**
 * Phase M8: status and registration traffic at cluster scale. A real API server (with the
 * webhooks), one KivePolicy with 10 traps, and N simulated nodes in this one process, each
 * running the agent's REAL status and registration code on its own 10 armed containers:
 * `nodeStatusEntries` and then the writer of the design under test, and the registration
 * publisher; one of them also writes the policy-wide totals as the agent that holds the
 * status Lease does; and W more "agents" only watch the policies, as every agent does.
 *
 * Measured from the API server's own metrics (requests, request and response bytes, watch
 * events per resource) and from the objects: largest object, requests and bytes per second
 * during convergence, watch events delivered per agent, reconcile wakes per agent, time from
 * the first write to the policy's status showing every node's containers armed.
 *
 * The same file runs against the code before the status redesign (a git worktree of the
 * commit before it, see docs/PERFORMANCE.md), detecting which writer the tree has.
 *
 * Usage: `deno run -A scripts/bench/m8.ts [--nodes 50,500,5000] [--out FILE.json]`
 *
 * @module
 */
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { parseArgs } from "node:util";
import { GROUP, type KivePolicyV2, PLURAL } from "../../src/api/mod.ts";
import type { TrapRegistration } from "../../src/agent/alert.ts";
import type { TrapTarget } from "../../src/agent/desired.ts";
import { createLogger } from "../../src/agent/log.ts";
import { PolicyStatusWriter } from "../../src/agent/policy_status.ts";
import { RegistrationPublisher } from "../../src/agent/registrations.ts";
import { nodeStatusEntries } from "../../src/agent/status.ts";
import { loadKubeConfig, ResourceWatcher } from "../../src/kube/mod.ts";
import { installApi } from "../../tests/apiserver/_install.ts";
import { ensureNamespace } from "../../tests/integration/_cluster.ts";
import { REPO } from "./_build.ts";
import { pool, run, sleep } from "./_util.ts";

/** One row of M8: one design at one N. */
export interface M8Row {
  design: "before" | "after";
  nodes: number;
  /** First write -> the policy's status shows N x 10 armed; null when it never did. */
  convergeMs: number | null;
  /** What the policy's status reached (for a run that did not converge). */
  armedSeen: number;
  /** Bytes of the largest object the run wrote: the policy, a report or a ConfigMap. */
  largestObjectBytes: number;
  largestObject: string;
  /** The policy object's bytes at the end. */
  policyBytes: number;
  requests: number;
  requestsPerSecond: number;
  /** Request bodies plus responses, bytes per second. */
  bytesPerSecond: number;
  /** Watch events the API server sent on KivePolicies, per watching agent. */
  policyWatchEventsPerAgent: number;
  /** Reconcile passes a watching agent was woken for. */
  wakesPerAgent: number;
  /** Writes the API server refused (logged warnings). */
  refusedWrites: number;
  /** The first refusal the log shows, if any. */
  firstRefusal?: string;
  seconds: number;
}

const TRAPS = 10;
const WATCHERS = 5;
const CONCURRENCY = 32;

/** Sums of the API server's metrics this phase reads. */
interface ApiMetrics {
  requests: number;
  requestBytes: number;
  responseBytes: number;
  policyWatchEvents: number;
}

async function apiMetrics(kubeconfig: string): Promise<ApiMetrics> {
  const out = await new Deno.Command(`${REPO}.cache/k8s/bin/kubectl`, {
    args: ["--kubeconfig", kubeconfig, "get", "--raw", "/metrics"],
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const sum = (pattern: RegExp) => {
    let total = 0;
    for (const line of text.split("\n")) {
      const match = pattern.exec(line);
      if (match) total += Number(match[1]);
    }
    return total;
  };
  return {
    requests: sum(/^apiserver_request_total\{.*\} (\S+)$/),
    requestBytes: sum(/^apiserver_request_body_size_bytes_sum\{.*\} (\S+)$/),
    responseBytes: sum(/^apiserver_response_sizes_sum\{.*\} (\S+)$/),
    policyWatchEvents: sum(/^apiserver_watch_events_total\{.*resource="kivepolicies".*\} (\S+)$/),
  };
}

/** The writers of the tree this runs in: after the redesign, or before it. */
async function designOf() {
  try {
    const reports = await import("../../src/agent/node_reports.ts");
    const totals = await import("../../src/agent/policy_totals.ts");
    const watches = await import("../../src/agent/watches.ts");
    const registrations = await import("../../src/agent/registrations.ts");
    return { name: "after" as const, reports, totals, watches, registrations };
  } catch {
    return { name: "before" as const };
  }
}

function targets(policy: KivePolicyV2, node: string): TrapTarget[] {
  const ref = {
    namespace: policy.metadata.namespace!,
    name: policy.metadata.name!,
    uid: policy.metadata.uid!,
    generation: policy.metadata.generation ?? 1,
  };
  return policy.spec.traps.map((trap, trapIndex) =>
    ({
      key: `${ref.uid}/${trapIndex}/${node}`,
      policy: ref,
      alertVersion: "v1",
      trapIndex,
      trap,
      pod: { namespace: ref.namespace, name: `pod-${node}`, uid: `uid-${node}` },
      container: { name: "app", id: `containerd://${node.padEnd(64, "0").slice(0, 64)}` },
    }) as unknown as TrapTarget
  );
}

function registrationsOf(list: TrapTarget[], node: string): TrapRegistration[] {
  return list.map((t, i) => ({
    dev: 42,
    ino: String(1000 + i),
    policy: { namespace: t.policy.namespace, name: t.policy.name, uid: t.policy.uid },
    trapIndex: t.trapIndex,
    path: t.trap.path,
    alertVersion: "v1",
    metadata: {},
    action: "alert",
    pod: t.pod,
    container: t.container,
    node,
  }));
}

/**
 * Runs M8 for each N, in the tree this file is in.
 *
 * @param nodeCounts The N to run.
 * @param log Progress lines.
 */
export async function m8(nodeCounts: number[], log: (line: string) => void): Promise<M8Row[]> {
  const design = await designOf();
  const dir = await Deno.makeTempDir({ prefix: "kivebpf-bench-m8-" });
  const previousKubeconfig = Deno.env.get("KUBECONFIG");
  const rows: M8Row[] = [];
  try {
    await run("bash", [`${REPO}scripts/apiserver.sh`, "start", dir]);
    const kubeconfig = `${dir}/kubeconfig`;
    Deno.env.set("KUBECONFIG", kubeconfig);
    const api = await installApi();
    try {
      await ensureNamespace(api.kube, "kivebpf-system");
      for (const n of nodeCounts) {
        log(`M8 ${design.name}: ${n} nodes`);
        rows.push(await m8Once(design, n, kubeconfig, api.kube));
        log(`M8 ${design.name} ${n}: ${JSON.stringify(rows.at(-1))}`);
      }
    } finally {
      await api.close();
    }
  } finally {
    await run("bash", [`${REPO}scripts/apiserver.sh`, "stop", dir]).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    if (previousKubeconfig === undefined) Deno.env.delete("KUBECONFIG");
    else Deno.env.set("KUBECONFIG", previousKubeconfig);
  }
  return rows;
}

async function m8Once(
  design: Awaited<ReturnType<typeof designOf>>,
  n: number,
  kubeconfig: string,
  kube: Awaited<ReturnType<typeof installApi>>["kube"],
): Promise<M8Row> {
  const namespace = `m8-${design.name}-${n}`;
  await ensureNamespace(kube, namespace);
  const kubeConfig = loadKubeConfig(kubeconfig);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const coordination = kubeConfig.makeApiClient(CoordinationV1Api);
  const policyPath = `/apis/${GROUP}/v2alpha1/namespaces/${namespace}/${PLURAL}/m8`;
  await kube.ok("POST", `/apis/${GROUP}/v2alpha1/namespaces/${namespace}/${PLURAL}`, {
    apiVersion: `${GROUP}/v2alpha1`,
    kind: "KivePolicy",
    metadata: { name: "m8", namespace },
    spec: {
      traps: Array.from({ length: TRAPS }, (_, i) => ({
        path: `/m8/trap-${i}.txt`,
        create: true,
        matchAny: [{ matchLabels: { app: "m8" } }],
      })),
    },
  });
  const policy = await kube.ok("GET", policyPath) as KivePolicyV2;
  const lines: string[] = [];
  const log = createLogger("warn", (line) => lines.push(line));
  const describe = (error: unknown) => String((error as Error)?.message ?? error);
  const expected = n * TRAPS;

  // Every agent watches all policies; W of them stand for the rest of the cluster.
  let wakes = 0;
  const policyWatch = () =>
    new ResourceWatcher(kubeConfig, {
      path: `/apis/${GROUP}/v2alpha1/${PLURAL}`,
      list: () =>
        custom.listClusterCustomObject({
          group: GROUP,
          version: "v2alpha1",
          plural: PLURAL,
        }) as never,
      onChange: () => wakes++,
      ...(design.name === "after" ? { signature: design.watches.policySignature } : {}),
    });
  const watchers = Array.from({ length: WATCHERS }, policyWatch);
  const leaderPolicies = policyWatch();
  await Promise.all([...watchers, leaderPolicies].map((w) => w.start()));
  const statusWriter = new PolicyStatusWriter({
    nodeName: "node-0",
    kernelId: "kernel-0",
    namespace: "kivebpf-system",
    custom,
    coordination,
    log,
    describe,
  });
  const reportWatch = design.name === "after"
    ? new ResourceWatcher(kubeConfig, {
      path: `/apis/${GROUP}/v2alpha1/kivenodereports`,
      list: () =>
        custom.listClusterCustomObject({
          group: GROUP,
          version: "v2alpha1",
          plural: "kivenodereports",
        }) as never,
      onChange: () => {},
    })
    : undefined;
  const totals = design.name === "after" && reportWatch
    ? new design.totals.PolicyTotals(reportWatch, statusWriter, log)
    : undefined;
  wakes = 0;
  const before = await apiMetrics(kubeconfig);
  const started = performance.now();
  let done = false;
  let armedSeen = 0;
  let convergeMs: number | null = null;
  const timeoutMs = 60_000 + n * 40;

  // The status Lease holder: a pass every 500 ms, as watch events would schedule it.
  const leader = (async () => {
    while (!done) {
      const current = leaderPolicies.list().find((p) => p.metadata?.uid === policy.metadata.uid);
      const policies = current ? [current as unknown as KivePolicyV2] : [];
      if (totals) await totals.pass(true, policies, new Map()).catch(() => {});
      else {
        // deno-lint-ignore no-explicit-any
        await (statusWriter as any).writeConditions(policies).catch(() => {});
      }
      await sleep(500);
    }
  })();
  const poll = (async () => {
    while (!done && performance.now() - started < timeoutMs) {
      const object = await kube.request("GET", policyPath);
      armedSeen = object.body?.status?.armed ?? 0;
      if (armedSeen === expected) {
        convergeMs = performance.now() - started;
        return;
      }
      await sleep(250);
    }
  })();
  // Each simulated node: its entries, its publisher and its writer, kept across passes as an
  // agent keeps them; a pass re-applies only what changed or failed, as the agent's does.
  const nodes = Array.from({ length: n }, (_, i) => {
    const node = `node-${i}`;
    const list = targets(policy, node);
    const entries = nodeStatusEntries(
      node,
      `kernel-${node}`,
      "tracepoint",
      list.map((target) => ({ target, ok: true as const })),
      [],
    );
    const publisher = new RegistrationPublisher({
      core,
      nodeName: node,
      namespace: "kivebpf-system",
      kernelId: `kernel-${node}`,
      log,
      describe,
    });
    const writer = design.name === "after"
      ? new design.reports.NodeReportWriter({ nodeName: node, custom, log, describe })
      : new PolicyStatusWriter({
        nodeName: node,
        kernelId: `kernel-${node}`,
        namespace: "kivebpf-system",
        custom,
        coordination,
        log,
        describe,
      });
    return { node, entries, publisher, writer, registrations: registrationsOf(list, node) };
  });
  const nodePass = () =>
    pool(nodes, CONCURRENCY, async ({ node, entries, publisher, writer, registrations }) => {
      if (done || performance.now() - started > timeoutMs) return;
      if (design.name === "after") {
        // Each simulated node leads its own kernel, alone on it: the agent's hand-over rule.
        if (design.registrations.kernelShared([], node)) await publisher.publish(registrations);
        else await publisher.withdraw();
        await (writer as InstanceType<typeof design.reports.NodeReportWriter>)
          .write(entries, [policy]);
      } else {
        await publisher.publish(registrations);
        // deno-lint-ignore no-explicit-any
        await (writer as any).writeNodeStatus(entries, [policy], []);
      }
    });
  // Agents pass again every 15 s (sooner on events); here every 2 s, until converged.
  while (!done && convergeMs === null && performance.now() - started < timeoutMs) {
    await nodePass();
    const next = performance.now() + 2000;
    while (convergeMs === null && performance.now() < next) await sleep(100);
  }
  await poll;
  done = true;
  await leader;
  const seconds = (performance.now() - started) / 1000;
  const after = await apiMetrics(kubeconfig);
  await Promise.all([...watchers, leaderPolicies].map((w) => w.stop()));
  await reportWatch?.stop();
  await totals?.stop();

  const policyBytes = JSON.stringify(await kube.ok("GET", policyPath)).length;
  let largestObjectBytes = policyBytes;
  let largestObject = "the KivePolicy";
  if (design.name === "after") {
    const reports = await kube.ok(
      "GET",
      `/apis/${GROUP}/v2alpha1/namespaces/${namespace}/kivenodereports?limit=50`,
    );
    for (const report of reports.items ?? []) {
      const bytes = JSON.stringify(report).length;
      if (bytes > largestObjectBytes) {
        [largestObjectBytes, largestObject] = [bytes, "a KiveNodeReport"];
      }
    }
  }
  const configMaps = await kube.ok("GET", "/api/v1/namespaces/kivebpf-system/configmaps?limit=50");
  for (const configMap of configMaps.items ?? []) {
    const bytes = JSON.stringify(configMap).length;
    if (bytes > largestObjectBytes) {
      [largestObjectBytes, largestObject] = [bytes, "a registration ConfigMap"];
    }
  }
  // Registrations and reports of this N go, so the next N starts from nothing.
  await kube.request(
    "DELETE",
    `/api/v1/namespaces/kivebpf-system/configmaps?labelSelector=${
      encodeURIComponent(`${GROUP}/kernel-id`)
    }`,
  );
  await kube.request("DELETE", `/api/v1/namespaces/${namespace}`);
  const requests = after.requests - before.requests;
  return {
    design: design.name,
    nodes: n,
    convergeMs,
    armedSeen,
    largestObjectBytes,
    largestObject,
    policyBytes,
    requests,
    requestsPerSecond: requests / seconds,
    bytesPerSecond: (after.requestBytes - before.requestBytes +
      after.responseBytes - before.responseBytes) / seconds,
    policyWatchEventsPerAgent: (after.policyWatchEvents - before.policyWatchEvents) /
      (WATCHERS + 1),
    wakesPerAgent: wakes / (WATCHERS + 1),
    refusedWrites: lines.filter((l) => l.includes("cannot")).length,
    firstRefusal: lines.find((l) => l.includes("cannot"))?.slice(0, 400),
    seconds,
  };
}

/** The rows as a markdown table. */
export function renderM8(rows: readonly M8Row[]): string {
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const out = [
    "| design | nodes | converged | largest object | policy object | requests | req/s | KiB/s | policy watch events per agent | wakes per agent | refused writes |",
    "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of rows) {
    out.push(
      `| ${r.design} | ${r.nodes} | ${
        r.convergeMs === null
          ? `no (${r.armedSeen}/${r.nodes * TRAPS} after ${r.seconds.toFixed(0)} s)`
          : `${(r.convergeMs / 1000).toFixed(1)} s`
      } | ${kib(r.largestObjectBytes)} (${r.largestObject}) | ${
        kib(r.policyBytes)
      } | ${r.requests} | ${r.requestsPerSecond.toFixed(0)} | ${
        (r.bytesPerSecond / 1024).toFixed(0)
      } | ${r.policyWatchEventsPerAgent.toFixed(1)} | ${
        r.wakesPerAgent.toFixed(1)
      } | ${r.refusedWrites} |`,
    );
  }
  return out.join("\n") + "\n";
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { nodes: { type: "string" }, out: { type: "string" } },
  });
  const counts = (values.nodes ?? "50,500,5000").split(",").map(Number);
  const rows = await m8(counts, (line) => console.error(line));
  if (values.out) await Deno.writeTextFile(values.out, JSON.stringify(rows, null, 2) + "\n");
  console.log(renderM8(rows));
}
