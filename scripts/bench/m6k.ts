/**
 * Phase M6K: reconcile scale end to end, with the real agent process against a real API
 * server. N Pod objects on node `bench-node` point (through `status.containerStatuses`) at N
 * "containers" made cheaply but real enough for the agent: a cgroup2 directory named by a
 * fresh 64-hex id, a root directory, and one process (chroot_sleep -c) that moves itself into
 * the cgroup, chroots into the root and sleeps, with its parent outside the cgroup, so the
 * agent's procfs scan (src/containers/find_process.ts) finds it as the container's init.
 * The agent (`mod.ts agent`) is started, and once it leads its kernel ONE KivePolicy with M
 * traps (create: true) matching every pod is applied; the phase times the apply to
 * `status.armed == N*M` (polled every 200 ms) and to the agent's "kernel traps updated" line
 * with `inodes == N*M`, and reads the agent's RSS at the end. Everything (agent, processes,
 * cgroups, roots, webhook, API server) is removed at the end, also on failure.
 *
 * @module
 */
import { GROUP, PLURAL } from "../../src/api/mod.ts";
import type { RuncContainer } from "../../tests/containers/_runc.ts";
import { freePort } from "../../tests/_support/kube.ts";
import { apply, installApi } from "../../tests/apiserver/_install.ts";
import { createPod, ensureNamespace } from "../../tests/integration/_cluster.ts";
import { REPO } from "./_build.ts";
import { readPidLines } from "./_proc.ts";
import { cgroup2Mount, removeCgroupDir } from "./_cgroup.ts";
import { pool, run, sleep } from "./_util.ts";
import { MIB, table } from "./_table.ts";
import { fmt } from "./_stats.ts";

/** What phase M6K measured. */
export interface M6kResult {
  pods: number;
  trapsPerPod: number;
  /** N*M: what `status.armed` and the armed inodes reach when everything is armed. */
  expected: number;
  /** Seconds spent setting up, by step (not part of the measurement). */
  setupSeconds: Record<string, number>;
  /** Apply of the policy -> `status.armed == N*M` seen by the 200 ms poll; null on timeout. */
  statusArmedMs: number | null;
  /** Apply -> the agent's "kernel traps updated" line with `inodes == N*M`; null on timeout. */
  kernelArmedMs: number | null;
  /** The last `status.armed` and armed-inode count seen (for a timeout). */
  lastStatusArmed: number;
  lastInodes: number;
  timeoutMs: number;
  /** The agent's VmRSS and VmHWM at the end, KiB. */
  rssKiB: number;
  hwmKiB: number;
  /** The agent's log after the apply: per message, how many lines and when (ms after apply). */
  timeline: { message: string; level: string; count: number; firstMs: number; lastMs: number }[];
  /** The agent's log level during the run. */
  logLevel: string;
  /** The first warnings and errors the agent logged after the apply. */
  warnings: string[];
}

const NODE = "bench-node";
const POD_NAMESPACE = "kivebpf-bench";
const LABEL = { "kivebpf-bench": "m6k" };
const POLICY = "m6k";

/**
 * Why M6K cannot run here (no etcd/kube-apiserver/kubectl built by scripts/build_k8s.sh, or
 * no cgroup2), or null when it can.
 */
export async function m6kUnavailable(): Promise<string | null> {
  const bin = Deno.env.get("K8S_BIN_DIR") ?? `${REPO}.cache/k8s/bin`;
  for (const name of ["etcd", "kube-apiserver", "kubectl"]) {
    try {
      await Deno.stat(`${bin}/${name}`);
    } catch {
      return `${bin}/${name} is missing (run scripts/build_k8s.sh)`;
    }
  }
  if (cgroup2Mount() === null) return "no cgroup2 file system is mounted";
  return null;
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function procStatusKiB(pid: number, field: string): number {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(new RegExp(`^${field}:\\s*(\\d+)`, "m").exec(text)?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/**
 * Runs phase M6K.
 *
 * @param options pods and traps per pod, the chroot_sleep binary, a progress logger, how long
 *   to wait for everything armed, and the agent's log level
 * @returns what it measured
 * @throws {Error} when a step of the setup fails (after cleaning up)
 */
export async function m6k(options: {
  pods: number;
  traps: number;
  chrootSleep: string;
  log: (message: string) => void;
  timeoutMs: number;
  logLevel?: string;
}): Promise<M6kResult> {
  const { pods: n, traps: m, log } = options;
  const logLevel = options.logLevel ?? "info";
  const expected = n * m;
  const cleanups: { what: string; fn: () => Promise<unknown> }[] = [];
  const setupSeconds: Record<string, number> = {};
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    log(`M6K ${name} ...`);
    try {
      return await fn();
    } finally {
      setupSeconds[name] = (performance.now() - t) / 1000;
    }
  };
  const previousKubeconfig = Deno.env.get("KUBECONFIG");
  try {
    // 1. The API server, the API (CRD + webhooks), the namespaces.
    const dir = await Deno.makeTempDir({ prefix: "kivebpf-bench-m6k-api-" });
    cleanups.push({ what: "api server dir", fn: () => Deno.remove(dir, { recursive: true }) });
    cleanups.push({
      what: "api server",
      fn: () => run("bash", [`${REPO}scripts/apiserver.sh`, "stop", dir]),
    });
    await step("apiserver", () => run("bash", [`${REPO}scripts/apiserver.sh`, "start", dir]));
    const kubeconfig = `${dir}/kubeconfig`;
    Deno.env.set("KUBECONFIG", kubeconfig);
    const api = await step("api", () => installApi());
    cleanups.push({ what: "webhook", fn: () => api.close() });
    const { kube } = api;
    await ensureNamespace(kube, "kivebpf-system");
    await ensureNamespace(kube, POD_NAMESPACE);

    // 2. The containers: cgroup2 directory + root + one chrooted process each.
    const mount = cgroup2Mount();
    if (mount === null) throw new Error("M6K needs cgroup2, and none is mounted");
    const cgBase = `${mount}/kivebpf-bench-m6k-${Deno.pid}`;
    const rootsBase = await Deno.makeTempDir({ prefix: "kivebpf-bench-m6k-roots-" });
    await Deno.chmod(rootsBase, 0o755);
    cleanups.push({
      what: "roots",
      fn: () => Deno.remove(rootsBase, { recursive: true }),
    });
    const ids = Array.from({ length: n }, randomId);
    const pids: number[] = [];
    await step("containers", async () => {
      await Deno.mkdir(cgBase);
      cleanups.push({
        what: "cgroups",
        fn: async () => {
          for (const id of ids) await removeCgroupDir(`${cgBase}/${id}`);
          await removeCgroupDir(cgBase);
        },
      });
      for (const id of ids) {
        await Deno.mkdir(`${rootsBase}/${id}`, { mode: 0o755 });
        await Deno.mkdir(`${cgBase}/${id}`);
      }
      const sleeper = new Deno.Command(options.chrootSleep, {
        args: ["-c", cgBase, rootsBase, ...ids],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const stdin = sleeper.stdin.getWriter();
      cleanups.push({
        what: "container processes",
        fn: async () => {
          await stdin.close().catch(() => {});
          await sleeper.status;
        },
      });
      pids.push(...(await readPidLines(sleeper.stdout, n)));
      if (pids.length < n) throw new Error(`chroot_sleep started ${pids.length} of ${n} processes`);
      const cgroup = await Deno.readTextFile(`/proc/${pids[0]}/cgroup`);
      if (!cgroup.includes(`/${ids[0]}`)) {
        throw new Error(`process ${pids[0]} is not in the cgroup of ${ids[0]}: ${cgroup}`);
      }
    });

    // 3. The Pod objects, each pointing at its container.
    await step("pods", () =>
      pool(ids, 16, async (id, i) => {
        await createPod(kube, {
          name: `m6k-${String(i).padStart(5, "0")}`,
          namespace: POD_NAMESPACE,
          node: NODE,
          labels: LABEL,
          containerName: "app",
          container: { id } as unknown as RuncContainer,
          ip: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
        });
      }));

    // 4. The agent, then the policy.
    const lines: { at: number; text: string }[] = [];
    const agent = new Deno.Command(Deno.execPath(), {
      cwd: REPO,
      args: [
        "run",
        "-A",
        `${REPO}mod.ts`,
        "agent",
        "--node",
        NODE,
        "--namespace",
        "kivebpf-system",
        "--metrics-port",
        String(freePort()),
        "--lease-seconds",
        "6",
        "--kubeconfig",
        kubeconfig,
        "--log-level",
        logLevel,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let exited = false;
    const agentStatus = agent.status.then((s) => {
      exited = true;
      return s;
    });
    const pump = (async () => {
      let buffer = "";
      for await (const chunk of agent.stderr.pipeThrough(new TextDecoderStream())) {
        const at = performance.now();
        buffer += chunk;
        let newline;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          lines.push({ at, text: buffer.slice(0, newline) });
          buffer = buffer.slice(newline + 1);
        }
      }
    })();
    cleanups.push({
      what: "agent",
      fn: async () => {
        if (!exited) {
          try {
            agent.kill("SIGTERM");
          } catch { /* exited */ }
          const timer = setTimeout(() => {
            try {
              agent.kill("SIGKILL");
            } catch { /* exited */ }
          }, 15_000);
          await agentStatus;
          clearTimeout(timer);
        }
        await pump.catch(() => {});
      },
    });
    const tail = () => lines.slice(-30).map((l) => l.text).join("\n");
    await step("agent leads", async () => {
      const deadline = performance.now() + 90_000;
      while (!lines.some((l) => l.text.includes("\tleading kernel"))) {
        if (exited) throw new Error(`the agent exited before leading:\n${tail()}`);
        if (performance.now() > deadline) throw new Error(`the agent did not lead:\n${tail()}`);
        await sleep(100);
      }
      // Let its informers settle (the lists of 1,000 pods) so the apply is what is timed.
      await sleep(2000);
    });

    log(`M6K applying one policy with ${m} traps over ${n} pods`);
    const policyPath = `/apis/${GROUP}/v1/namespaces/kivebpf-system/${PLURAL}/${POLICY}`;
    const firstLine = lines.length;
    const t0 = performance.now();
    await apply(kube, policyPath, {
      apiVersion: `${GROUP}/v1`,
      kind: "KivePolicy",
      metadata: { name: POLICY, namespace: "kivebpf-system" },
      spec: {
        traps: Array.from({ length: m }, (_, j) => ({
          path: `/kivebpf-m6k-trap-${j}`,
          create: true,
          matchAny: [{ namespace: POD_NAMESPACE, matchLabels: LABEL }],
        })),
      },
    });
    let statusArmedMs: number | null = null;
    let kernelArmedMs: number | null = null;
    let lastStatusArmed = 0;
    let lastInodes = 0;
    let scanned = firstLine;
    const deadline = t0 + options.timeoutMs;
    while ((statusArmedMs === null || kernelArmedMs === null) && performance.now() < deadline) {
      if (exited) throw new Error(`the agent exited:\n${tail()}`);
      for (; scanned < lines.length; scanned++) {
        const line = lines[scanned];
        if (!line.text.includes("\tkernel traps updated\t")) continue;
        const fields = JSON.parse(line.text.slice(line.text.lastIndexOf("\t") + 1));
        lastInodes = Number(fields.inodes);
        if (kernelArmedMs === null && lastInodes === expected) kernelArmedMs = line.at - t0;
      }
      if (statusArmedMs === null) {
        const object = await kube.ok("GET", policyPath);
        lastStatusArmed = Number(object.status?.armed ?? 0);
        if (lastStatusArmed === expected) statusArmedMs = performance.now() - t0;
      }
      await sleep(200);
    }
    const rssKiB = procStatusKiB(agent.pid, "VmRSS");
    const hwmKiB = procStatusKiB(agent.pid, "VmHWM");
    log(
      `M6K status.armed ${lastStatusArmed}/${expected} after ${statusArmedMs?.toFixed(0)} ms, ` +
        `inodes ${lastInodes}/${expected} after ${kernelArmedMs?.toFixed(0)} ms, ` +
        `RSS ${(rssKiB / 1024).toFixed(1)} MiB`,
    );

    const byMessage = new Map<string, M6kResult["timeline"][number]>();
    const warnings: string[] = [];
    for (const line of lines.slice(firstLine)) {
      const [, level = "", message = line.text] = line.text.split("\t");
      const at = line.at - t0;
      const entry = byMessage.get(message);
      if (entry) {
        entry.count++;
        entry.lastMs = at;
      } else byMessage.set(message, { message, level, count: 1, firstMs: at, lastMs: at });
      if ((level === "WARN" || level === "ERROR") && warnings.length < 10) {
        warnings.push(line.text.length > 600 ? `${line.text.slice(0, 600)}...` : line.text);
      }
    }
    return {
      pods: n,
      trapsPerPod: m,
      expected,
      setupSeconds,
      statusArmedMs,
      kernelArmedMs,
      lastStatusArmed,
      lastInodes,
      timeoutMs: options.timeoutMs,
      rssKiB,
      hwmKiB,
      timeline: [...byMessage.values()].sort((a, b) => a.firstMs - b.firstMs),
      logLevel,
      warnings,
    };
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup.fn();
      } catch (error) {
        log(`M6K cleanup of ${cleanup.what} failed: ${String(error)}`);
      }
    }
    if (previousKubeconfig === undefined) Deno.env.delete("KUBECONFIG");
    else Deno.env.set("KUBECONFIG", previousKubeconfig);
  }
}

/** This phase's section of the report. */
export function renderM6k(out: string[], k: M6kResult): void {
  out.push("## M6K reconcile scale, real agent and API server");
  out.push("");
  out.push(
    `${k.pods} Pod objects on node bench-node, each pointing (status.containerStatuses, ` +
      "containerd://<id>) at a real process in a cgroup2 directory named by its id, chrooted into " +
      `its own root; the real agent (mod.ts agent, --log-level ${k.logLevel}) against a real ` +
      `kube-apiserver; ONE KivePolicy with ${k.trapsPerPod} traps (create: true) matching every ` +
      "pod, applied once the agent leads its kernel. Times from the apply (server-side apply " +
      "request sent) to the policy's status.armed reaching N*M (polled every 200 ms) and to the " +
      'agent\'s "kernel traps updated" line with inodes == N*M (time the bench read the line).',
  );
  out.push("");
  const s = (ms: number | null) =>
    ms === null ? `not reached in ${fmt(k.timeoutMs / 1000, 0)} s` : fmt(ms / 1000, 2);
  out.push(table(["measure", "value"], [
    [`apply -> status.armed == ${k.expected}, s`, s(k.statusArmedMs)],
    [`apply -> kernel traps updated, inodes == ${k.expected}, s`, s(k.kernelArmedMs)],
    ["last status.armed / inodes seen", `${k.lastStatusArmed} / ${k.lastInodes}`],
    ["agent VmRSS at the end, MiB", fmt(k.rssKiB / MIB, 1)],
    ["agent VmHWM (peak), MiB", fmt(k.hwmKiB / MIB, 1)],
    [
      "setup (not measured), s",
      Object.entries(k.setupSeconds).map(([name, sec]) => `${name} ${fmt(sec, 1)}`).join(", "),
    ],
  ]));
  out.push("");
  out.push("The agent's log after the apply (ms after the apply, as the bench read the lines):");
  out.push("");
  out.push(table(
    ["message", "level", "lines", "first ms", "last ms"],
    k.timeline.slice(0, 25).map((t) => [
      t.message,
      t.level,
      String(t.count),
      fmt(t.firstMs, 0),
      fmt(t.lastMs, 0),
    ]),
  ));
  out.push("");
  if (k.warnings.length > 0) {
    out.push("First warnings:");
    out.push("");
    for (const w of k.warnings) out.push(`- \`${w.replaceAll("`", "'")}\``);
    out.push("");
  }
}
