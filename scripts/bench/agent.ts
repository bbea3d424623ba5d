/**
 * The process the benchmark measures as "the agent": the trap engine with the agent's own
 * event path (the production AlertRouter: KernelArms routing, buildAlert and the loss
 * summaries, AlertSink to stdout or a callback), and nothing of Kubernetes. Started by bench.ts, one per measured phase; not meant to be run by hand.
 *
 * Mode `serve` (default): opens the engine, arms `--synthetic` made-up (dev, ino) keys plus
 * every `--trap-file`, and prints `BENCH {"type":"ready",...}` on stderr. It then answers
 * lines on stdin: `stats` (engine counters and the latencies recorded since the last
 * `stats`), `flush` (waits for queued alerts), `quit` (closes and exits). Replies are one
 * `BENCH <json>` line on stderr each; stdout carries only alert lines (json format). With
 * `--cgroup-filter ID` (repeatable; cgroup v2 ids, decimal) the engine's cgroup prefilter is
 * turned on after arming (`engine.setCgroupFilter`): only tasks directly in those cgroups are
 * checked.
 *
 * Mode `rss` (M5): prints the resident memory of a bare Deno process, with the engine open,
 * and with the whole agent module graph loaded.
 *
 * Mode `reconcile` (M6): builds `--pods` Pod objects whose containers' init processes are the
 * pids in `--pids-file`, one policy with `--traps` traps matching them all, and times the
 * agent's path from the policy list to every inode armed: computeDesired, planting each trap
 * file through /proc/<pid>/root (ensureTrapFile), KernelArms.sync with the real engine.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { TrapRegistration } from "../../src/agent/alert.ts";
import { AlertRouter } from "../../src/agent/alert_router.ts";
import { KernelArms } from "../../src/agent/kernel_arms.ts";
import { createLogger } from "../../src/agent/log.ts";
import { monotonicClocks } from "../../src/bpf/mod.ts";
import { AlertSink } from "../../src/delivery/mod.ts";
import { type Backend, openEngine, toKernelDev, type TrapEngine } from "../../src/engine/mod.ts";

const encoder = new TextEncoder();

/** Writes one reply line on stderr. */
function reply(message: Record<string, unknown>): void {
  Deno.stderr.writeSync(
    encoder.encode(
      `BENCH ${JSON.stringify(message, (_k, v) => typeof v === "bigint" ? v.toString() : v)}\n`,
    ),
  );
}

/** The (dev, ino) keys of made-up traps: a device number no file system has. */
const SYNTHETIC_DEV = 4094 * 2 ** 20 + 1;

function registration(
  dev: number,
  ino: bigint,
  path: string,
  index: number,
  callback?: string,
): TrapRegistration {
  return {
    dev,
    ino: ino.toString(),
    policy: { namespace: "bench", name: "bench-policy", uid: "uid-bench" },
    trapIndex: index,
    path,
    alertVersion: "v2alpha1",
    metadata: {},
    callback,
    action: "alert",
    pod: { namespace: "bench", name: "bench-pod", uid: "uid-pod" },
    container: { name: "bench", id: "bench://host" },
    node: "bench-node",
  };
}

async function serve(values: Record<string, string | string[] | boolean | undefined>) {
  const openStarted = performance.now();
  const engine = await openEngine({
    backend: values.backend as Backend,
    aggregateWindowMs: Number(values["aggregate-ms"] ?? 0),
    ringBufferBytes: values["ring-bytes"] ? Number(values["ring-bytes"]) : undefined,
    maxTraps: values["max-traps"] ? Number(values["max-traps"]) : undefined,
  });
  const openMs = performance.now() - openStarted;
  const output = String(values.output ?? "stdout");
  const callback = output === "callback" ? String(values["callback-url"]) : undefined;
  const armStarted = performance.now();
  const registrations: TrapRegistration[] = [];
  for (const [i, path] of ((values["trap-file"] as string[] | undefined) ?? []).entries()) {
    const info = Deno.statSync(path);
    const key = engine.learnKey(path) ?? { dev: toKernelDev(info.dev), ino: BigInt(info.ino!) };
    registrations.push(registration(key.dev, key.ino, path, i, callback));
  }
  const synthetic = Number(values.synthetic ?? 0);
  for (let i = 0; i < synthetic; i++) {
    registrations.push(
      registration(SYNTHETIC_DEV, BigInt(i + 1), `/synthetic/${i}`, registrations.length),
    );
  }
  const arms = new KernelArms();
  arms.sync(engine, registrations);
  const armMs = performance.now() - armStarted;
  const cgroupIds = ((values["cgroup-filter"] as string[] | undefined) ?? []).map((id) => {
    if (!/^\d+$/.test(id)) throw new Error(`--cgroup-filter takes a cgroup v2 id, got ${id}`);
    return BigInt(id);
  });
  if (cgroupIds.length > 0) engine.setCgroupFilter(cgroupIds);

  const sink = new AlertSink({
    stdout: { format: "json" },
    callbacks: { timeoutMs: 5000, queueSize: 100_000 },
  });
  // The agent's own alert path, without what needs the API server (pod Events, header
  // Secrets): logs go nowhere, as nothing here reads them.
  const router = new AlertRouter({
    kernelId: "bench-kernel",
    log: createLogger("error", () => {}),
    output: sink,
  }, arms);
  const latencies: number[] = [];
  let lostNoticed = 0;
  const loop = (async () => {
    for await (const event of engine.events()) {
      if (event.kind === "lost") lostNoticed += event.count;
      else if (latencies.length < 1_000_000) {
        latencies.push(Number(monotonicClocks().boottimeNs - event.bootNs));
      }
      if (output !== "none") router.route(event);
    }
  })();

  const linkFds = engine.linkFds;
  reply({
    type: "ready",
    pid: Deno.pid,
    backend: engine.backend,
    armed: engine.counters().armed,
    openMs,
    armMs,
    backendLinkFd: linkFds[0],
    cgroupFilter: engine.cgroupFilter(),
  });

  const counters = () => {
    const c = engine.counters();
    return { ...c, lostByTrap: Object.fromEntries(c.lostByTrap), lostNoticed };
  };
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let buffered = "";
  outer: for await (const chunk of lines) {
    buffered += chunk;
    let at: number;
    while ((at = buffered.indexOf("\n")) >= 0) {
      const command = buffered.slice(0, at).trim();
      buffered = buffered.slice(at + 1);
      if (command === "stats") {
        reply({ type: "stats", counters: counters(), latenciesNs: latencies.splice(0) });
      } else if (command === "flush") {
        await sink.flush(10_000);
        reply({ type: "flushed", pending: sink.pending });
      } else if (command === "quit") {
        break outer;
      }
    }
  }
  await engine.close();
  await loop;
  await sink.close({ timeoutMs: 5000 });
  reply({ type: "bye", counters: counters() });
}

async function reconcile(values: Record<string, string | string[] | boolean | undefined>) {
  // Loaded here so that the serve mode's memory is the engine and alert path only.
  const { GROUP, validateSpec } = await import("../../src/api/mod.ts");
  const { computeDesired, podView } = await import("../../src/agent/desired.ts");
  const { ensureTrapFile } = await import("../../src/containers/mod.ts");
  const pods = Number(values.pods);
  const traps = Number(values.traps);
  const pids = JSON.parse(Deno.readTextFileSync(String(values["pids-file"]))) as number[];
  const openStarted = performance.now();
  await using engine: TrapEngine = await openEngine({
    backend: values.backend as Backend,
    maxTraps: Math.max(65536, pods * traps * 2),
  });
  const openMs = performance.now() - openStarted;

  // What the pod watcher would hold: Pod objects of this node, one running container each.
  const podObjects: import("../../src/agent/desired.ts").PodObject[] = Array.from(
    { length: pods },
    (_, i) => ({
      metadata: {
        name: `pod-${i}`,
        namespace: "bench",
        uid: `uid-pod-${i}`,
        labels: { app: "bench" },
      },
      spec: { nodeName: "bench-node", containers: [{ name: "app" }] },
      status: {
        phase: "Running",
        podIP: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
        containerStatuses: [{ name: "app", containerID: `bench://${i}`, state: { running: {} } }],
      },
    }),
  );
  const pidOf = new Map(pids.map((pid, i) => [`bench://${i}`, pid]));

  const t0 = performance.now();
  const checked = validateSpec("v2alpha1", {
    traps: Array.from({ length: traps }, (_, j) => ({
      path: `/etc/kive-bench/trap-${j}.txt`,
      create: true,
      mode: 444,
      matchAny: [{ namespace: "bench", matchLabels: { app: "bench" } }],
    })),
  });
  if (!checked.ok) throw new Error(`Bench policy is invalid: ${JSON.stringify(checked.problems)}`);
  const policy: import("../../src/api/mod.ts").KivePolicyV2 = {
    apiVersion: `${GROUP}/v2alpha1`,
    kind: "KivePolicy",
    metadata: { name: "bench", namespace: "bench", uid: "uid-bench", generation: 1 },
    spec: checked.spec,
  };
  const desired = computeDesired([policy], podObjects.map(podView));
  const t1 = performance.now();
  const registrations: TrapRegistration[] = [];
  const failures: string[] = [];
  for (const target of desired.targets) {
    const pid = pidOf.get(target.container.id);
    if (pid === undefined) {
      failures.push(`${target.container.id}: no process`);
      continue;
    }
    const result = ensureTrapFile(pid, target.trap.path, {
      create: target.trap.create,
      mode: 0o444,
      content: target.trap.content,
    });
    if (!result.ok) {
      failures.push(`${target.container.id}: ${result.problem.message}`);
      continue;
    }
    registrations.push({
      dev: result.file.kernelDev,
      ino: result.file.ino.toString(),
      policy: { namespace: "bench", name: "bench", uid: "uid-bench" },
      trapIndex: target.trapIndex,
      path: target.trap.path,
      alertVersion: target.alertVersion,
      metadata: {},
      action: target.trap.action,
      pod: target.pod,
      container: target.container,
      node: "bench-node",
    });
  }
  const t2 = performance.now();
  const arms = new KernelArms();
  const synced = arms.sync(engine, registrations);
  const t3 = performance.now();
  const status = Deno.readTextFileSync("/proc/self/status");
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1]);
  reply({
    type: "reconciled",
    pods,
    trapsPerPod: traps,
    targets: desired.targets.length,
    planted: registrations.length,
    armed: engine.counters().armed,
    newlyArmed: synced.armed,
    failures: failures.slice(0, 5),
    failureCount: failures.length,
    openMs,
    computeMs: t1 - t0,
    plantMs: t2 - t1,
    armMs: t3 - t2,
    totalMs: t3 - t0,
    rssKiB: kib("VmRSS"),
    hwmKiB: kib("VmHWM"),
  });
}

/**
 * Resident memory of the pieces: a bare Deno process, then with the engine open and 1,000
 * traps armed, then with the whole agent module graph (Kubernetes client, zod) loaded.
 */
async function rss(values: Record<string, string | string[] | boolean | undefined>) {
  const kib = () => {
    const status = Deno.readTextFileSync("/proc/self/status");
    return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1]);
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300));
  await settle();
  const bare = kib();
  const engine = await openEngine({ backend: values.backend as Backend });
  for (let i = 0; i < 1000; i++) engine.arm({ dev: SYNTHETIC_DEV, ino: BigInt(i + 1) }, i + 1);
  await settle();
  const withEngine = kib();
  await import("../../src/agent/mod.ts");
  await settle();
  const withAgentModules = kib();
  await engine.close();
  reply({ type: "rss", bare, withEngine, withAgentModules });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      mode: { type: "string", default: "serve" },
      backend: { type: "string", default: "auto" },
      synthetic: { type: "string" },
      "trap-file": { type: "string", multiple: true },
      output: { type: "string" },
      "callback-url": { type: "string" },
      "aggregate-ms": { type: "string" },
      "ring-bytes": { type: "string" },
      "max-traps": { type: "string" },
      pods: { type: "string" },
      traps: { type: "string" },
      "pids-file": { type: "string" },
      "cgroup-filter": { type: "string", multiple: true },
    },
  });
  try {
    if (values.mode === "reconcile") await reconcile(values);
    else if (values.mode === "rss") await rss(values);
    else await serve(values);
  } catch (error) {
    reply({ type: "error", message: error instanceof Error ? error.message : String(error) });
    Deno.exit(1);
  }
}
