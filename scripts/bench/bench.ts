/**
 * The benchmark suite (docs/PERFORMANCE.md): the cost of the agent on every file open, the
 * latency of an alert, loss accounting under a flood, the agent's CPU and memory, and the
 * time to arm 1,000 pods x 10 traps. Baseline and agent runs are interleaved (A B A B ...)
 * so machine drift cancels; results are medians with min and max.
 *
 * Usage (root; BPF needs it):
 *
 *   deno run -A scripts/bench/bench.ts [--backend auto|lsm|fentry|kprobe|tracepoint]
 *       [--smoke] [--out DIR] [--only M1,M2,CG,M3,M4,M5,M6,M6K,BW,M8] [--rounds N]
 *       [--m6k-pods N] [--m6k-traps M] [--m6k-log-level debug|info]
 *
 * Writes DIR/results.md and DIR/results.json (DIR defaults to .cache/bench) and prints the
 * table. `--smoke` runs every measurement for a moment (seconds): it checks that the suite
 * runs, its numbers mean nothing.
 *
 * Phase CG is M1 and M2 with the engine's cgroup prefilter on: the bench creates a cgroup2
 * directory for the run (the "trapped container"), gives its id to the agent, and runs the
 * open+close load outside it (where it runs anyway) and inside it (moved there by a `sh`
 * wrapper that writes its own pid to cgroup.procs, then execs the load).
 *
 * Phase M6K is reconcile scale end to end: the real agent process against its own etcd +
 * kube-apiserver, Pod objects pointing at real (cheap) containers; see scripts/bench/m6k.ts.
 * It takes about 20 s (12 s with --smoke) and is skipped, with the reason in the results,
 * where the Kubernetes binaries of scripts/build_k8s.sh are missing.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { libbpfVersion } from "../../src/bpf/mod.ts";
import type { Backend } from "../../src/engine/mod.ts";
import { AgentProcess } from "./_agent_process.ts";
import { buildBpf, buildLoad, CACHE } from "./_build.ts";
import { collectEnvironment } from "./_env.ts";
import { renderMarkdown, type Results } from "./_report.ts";
import { blindWindows } from "./blind_windows.ts";
import { m6k, m6kUnavailable } from "./m6k.ts";
import { m8 } from "./m8.ts";
import { m1 } from "./m1.ts";
import { m2 } from "./m2.ts";
import { cg } from "./cg.ts";
import { m3 } from "./m3.ts";
import { m4 } from "./m4.ts";
import { m5Idle } from "./m5.ts";
import { m6 } from "./m6.ts";
import { Bench, FULL, log, REAL_TRAPS, SMOKE } from "./_bench.ts";

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      backend: { type: "string", default: "auto" },
      smoke: { type: "boolean", default: false },
      out: { type: "string" },
      only: { type: "string" },
      rounds: { type: "string" },
      "m6k-pods": { type: "string" },
      "m6k-traps": { type: "string" },
      "m6k-log-level": { type: "string", default: "info" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno run -A scripts/bench/bench.ts [--backend B] [--smoke] [--out DIR] [--only M1,M2,CG,M3,M4,M5,M6,M6K,BW,M8] [--rounds N] [--m6k-pods N] [--m6k-traps M] [--m6k-log-level L]",
    );
    return;
  }
  const profile = { ...(values.smoke ? SMOKE : FULL) };
  if (values.rounds) profile.rounds = profile.m2Rounds = Number(values.rounds);
  if (values["m6k-pods"]) profile.m6kPods = Number(values["m6k-pods"]);
  if (values["m6k-traps"]) profile.m6kTraps = Number(values["m6k-traps"]);
  const only = new Set((values.only ?? "M1,M2,CG,M3,M4,M5,M6,M6K,BW,M8").toUpperCase().split(","));
  const outDir = values.out ?? CACHE;
  const started = performance.now();

  const [objects, openclose, trapHit, chrootSleep] = await Promise.all([
    buildBpf(),
    buildLoad("openclose"),
    buildLoad("trap_hit"),
    buildLoad("chroot_sleep"),
  ]);
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "kivebpf-bench-" }));
  await Deno.chmod(dir, 0o755);
  for (let i = 0; i < navigator.hardwareConcurrency; i++) {
    await Deno.writeTextFile(`${dir}/nt-${i}`, "plain\n");
  }
  for (let i = 0; i < REAL_TRAPS; i++) await Deno.writeTextFile(`${dir}/trap-${i}`, "secret\n");

  // Resolve "auto" once, so that every phase measures the same backend.
  let backend = values.backend as Backend | "auto";
  if (backend === "auto") {
    const probe = await AgentProcess.start({ backend: "auto", args: ["--synthetic", "0"] });
    backend = probe.ready.backend as Backend;
    await probe.quit();
  }
  log(`backend ${backend}, ${values.smoke ? "smoke" : "full"} run, files in ${dir}`);
  const bench = new Bench(profile, backend, dir, {
    openclose,
    trap_hit: trapHit,
    chroot_sleep: chrootSleep,
  }, objects);
  const environment = await collectEnvironment(backend, libbpfVersion());
  const m5: Results["m5"] = { rssByTraps: {}, maps: {} };
  const results: Results = { environment, smoke: values.smoke ?? false, phasesSeconds: {}, m5 };
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
    if (!only.has(name)) return undefined;
    log(`${name} ...`);
    const t = performance.now();
    try {
      return await fn();
    } finally {
      results.phasesSeconds[name] = (performance.now() - t) / 1000;
    }
  };
  try {
    results.m1 = await phase("M1", () => m1(bench, m5));
    results.m2 = await phase("M2", () => m2(bench));
    results.cgroup = await phase("CG", () => cg(bench));
    results.m3 = await phase("M3", () => m3(bench, m5));
    results.m4 = await phase("M4", () => m4(bench, m5));
    await phase("M5", () => m5Idle(bench, m5));
    results.m6 = await phase("M6", () => m6(bench));
    results.m6k = await phase("M6K", async () => {
      const why = await m6kUnavailable();
      if (why) {
        log(`M6K skipped: ${why}`);
        results.m6kSkipped = why;
        return undefined;
      }
      return await m6k({
        pods: profile.m6kPods,
        traps: profile.m6kTraps,
        chrootSleep,
        log,
        timeoutMs: profile.m6kTimeoutMs,
        logLevel: values["m6k-log-level"],
      });
    });
    results.blindWindows = await phase("BW", async () => {
      const why = await m6kUnavailable();
      if (why) {
        log(`BW skipped: ${why}`);
        results.blindWindowsSkipped = why;
        return undefined;
      }
      return await blindWindows(profile.bwRounds, profile.bwScenarios, log);
    });
    results.m8 = await phase("M8", async () => {
      const why = await m6kUnavailable();
      if (why) {
        log(`M8 skipped: ${why}`);
        results.m8Skipped = why;
        return undefined;
      }
      return await m8(profile.m8Nodes, log);
    });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  results.totalSeconds = (performance.now() - started) / 1000;
  results.loadAverageEnd = Deno.loadavg();
  await Deno.mkdir(outDir, { recursive: true });
  const json = JSON.stringify(results, null, 2);
  const markdown = renderMarkdown(results);
  await Deno.writeTextFile(`${outDir}/results.json`, `${json}\n`);
  await Deno.writeTextFile(`${outDir}/results.md`, markdown);
  console.log(markdown);
  log(`wrote ${outDir}/results.md and results.json in ${results.totalSeconds.toFixed(0)} s`);
}

if (import.meta.main) await main();
