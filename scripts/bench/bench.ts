/**
 * The benchmark suite (docs/PERFORMANCE.md): the cost of the agent on every file open, the
 * latency of an alert, loss accounting under a flood, the agent's CPU and memory, and the
 * time to arm 1,000 pods x 10 traps. Baseline and agent runs are interleaved (A B A B ...)
 * so machine drift cancels; results are medians with min and max.
 *
 * Usage (root; BPF needs it):
 *
 *   deno run -A scripts/bench/bench.ts [--backend auto|lsm|fentry|kprobe|tracepoint]
 *       [--smoke] [--out DIR] [--only M1,M2,M3,M4,M5,M6] [--rounds N]
 *
 * Writes DIR/results.md and DIR/results.json (DIR defaults to .cache/bench) and prints the
 * table. `--smoke` runs every measurement for a moment (seconds): it checks that the suite
 * runs, its numbers mean nothing.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { BpfObject, libbpfVersion, monotonicClocks } from "../../src/bpf/mod.ts";
import type { Backend } from "../../src/engine/mod.ts";
import { AgentProcess } from "./_agent_process.ts";
import { buildBpf, buildLoad, CACHE, REPO } from "./_build.ts";
import { collectEnvironment } from "./_env.ts";
import {
  cpuPercent,
  enableBpfStats,
  type ProcSample,
  progIdOfFd,
  progIdOfLink,
  readMaps,
  readProgStats,
} from "./_proc.ts";
import { type ReconcileRound, renderMarkdown, type Results } from "./_report.ts";
import { percentile, summarize } from "./_stats.ts";

/** How long and how often each measurement runs. */
interface Profile {
  rounds: number;
  /** Target duration of one M1 load run, ms. */
  loadMs: number;
  trapCounts: number[];
  m2Rounds: number;
  m3Hits: number;
  m3IntervalUs: number;
  floodProcs: number;
  floodPerProc: number;
  floodVariants: { name: string; ringBytes?: number; aggregateMs: number }[];
  idleMs: number;
  m6Pods: number;
  m6Traps: number;
  m6Rounds: number;
}

const FULL: Profile = {
  rounds: 7,
  loadMs: 700,
  trapCounts: [0, 1, 1000, 50_000],
  m2Rounds: 7,
  m3Hits: 3000,
  m3IntervalUs: 1000,
  floodProcs: 4,
  floodPerProc: 250_000,
  floodVariants: [
    { name: "agent defaults: 1 MiB ring, no aggregation", aggregateMs: 0 },
    { name: "aggregation 50 ms, 64 KiB ring", ringBytes: 65536, aggregateMs: 50 },
  ],
  idleMs: 5000,
  m6Pods: 1000,
  m6Traps: 10,
  m6Rounds: 3,
};

const SMOKE: Profile = {
  rounds: 1,
  loadMs: 30,
  trapCounts: [0, 1, 1000, 50_000],
  m2Rounds: 1,
  m3Hits: 30,
  m3IntervalUs: 1000,
  floodProcs: 2,
  floodPerProc: 5000,
  floodVariants: [{ name: "agent defaults: 1 MiB ring, no aggregation", aggregateMs: 0 }],
  idleMs: 200,
  m6Pods: 10,
  m6Traps: 2,
  m6Rounds: 1,
};

/** Real trap files armed besides the synthetic keys (never opened by the M1 load). */
const REAL_TRAPS = 10;

const EMPTY_PROGRAMS: Record<Backend, string[]> = {
  tracepoint: ["empty_sys_exit", "filter_sys_exit"],
  lsm: ["empty_lsm_file_open"],
  fentry: ["empty_fentry_file_open"],
  kprobe: ["empty_kprobe_file_open"],
};

function log(message: string): void {
  console.error(`bench: ${message}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function runJson<T>(bin: string, args: string[]): Promise<T> {
  const out = await new Deno.Command(bin, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${bin} ${args.join(" ")} failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return JSON.parse(text.trim().split("\n").at(-1)!) as T;
}

/** Runs agent.ts in a one-shot mode and returns its single reply. */
async function runAgentOnce(args: string[]): Promise<Record<string, unknown> & { type: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    cwd: REPO,
    args: ["run", "-A", `${REPO}scripts/bench/agent.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const errText = new TextDecoder().decode(out.stderr);
  const line = errText.split("\n").find((l) => l.startsWith("BENCH "));
  const reply = line ? JSON.parse(line.slice(6)) : null;
  if (!out.success || !reply || reply.type === "error") {
    throw new Error(`agent.ts ${args.join(" ")} failed (exit ${out.code}): ${errText}`);
  }
  return reply;
}

/** Attaches the empty programs of a backend in this process; close() detaches them. */
function attachEmpty(path: string, backend: Backend, names: string[]): BpfObject {
  const obj = BpfObject.open(path);
  try {
    for (const p of obj.programs()) p.setAutoload(names.includes(p.name));
    obj.load();
    for (const name of names) obj.program(name).attach();
    return obj;
  } catch (error) {
    obj.close();
    throw new Error(`Cannot attach the empty ${backend} program(s) ${names.join(", ")}`, {
      cause: error,
    });
  }
}

class Bench {
  readonly profile: Profile;
  readonly backend: Backend;
  readonly dir: string;
  readonly bins: Record<"openclose" | "trap_hit" | "chroot_sleep", string>;
  readonly objects: { trap: string; empty: string };
  readonly threads = navigator.hardwareConcurrency;
  iters = { st: 0, mt: 0 };

  constructor(
    profile: Profile,
    backend: Backend,
    dir: string,
    bins: Bench["bins"],
    objects: Bench["objects"],
  ) {
    this.profile = profile;
    this.backend = backend;
    this.dir = dir;
    this.bins = bins;
    this.objects = objects;
  }

  trapFiles(n: number): string[] {
    return Array.from({ length: Math.min(n, REAL_TRAPS) }, (_, i) => `${this.dir}/trap-${i}`);
  }

  agentArgs(traps: number, extra: string[] = []): string[] {
    const files = this.trapFiles(traps);
    return [
      "--synthetic",
      String(traps - files.length),
      ...files.flatMap((f) => ["--trap-file", f]),
      ...extra,
    ];
  }

  async load(threads: number, iters: number): Promise<number> {
    const r = await runJson<{ ns_per_op: number }>(this.bins.openclose, [
      this.dir,
      String(iters),
      String(threads),
    ]);
    return r.ns_per_op;
  }

  async calibrate(): Promise<void> {
    const st = await this.load(1, 20_000);
    const mt = await this.load(this.threads, 20_000);
    const perRun = (ns: number) => Math.max(2000, Math.round((this.profile.loadMs * 1e6) / ns));
    this.iters = { st: perRun(st), mt: perRun(mt) };
    log(`calibrated: ${st.toFixed(0)} ns/op single, ${mt.toFixed(0)} ns/op x${this.threads}`);
  }

  async loadPair(): Promise<{ st: number; mt: number }> {
    return {
      st: await this.load(1, this.iters.st),
      mt: await this.load(this.threads, this.iters.mt),
    };
  }

  async m1(m5: Results["m5"]): Promise<Results["m1"]> {
    await this.calibrate();
    const configs = ["empty", ...this.profile.trapCounts.map((n) => `agent-${n}`)];
    const runs: NonNullable<Results["m1"]>["runs"] = [];
    const maps: NonNullable<Results["m5"]>["maps"] = {};
    const under: { cpu: number[]; rssKiB: number[] } = { cpu: [], rssKiB: [] };
    for (let round = 0; round < this.profile.rounds; round++) {
      log(`M1 round ${round + 1}/${this.profile.rounds}`);
      let before = await this.loadPair();
      for (const config of configs) {
        let measured: { st: number; mt: number };
        let agent: AgentProcess | null = null;
        let obj: BpfObject | null = null;
        try {
          if (config === "empty") {
            obj = attachEmpty(
              this.objects.empty,
              this.backend,
              EMPTY_PROGRAMS[this.backend].slice(0, 1),
            );
          } else {
            const traps = Number(config.slice(6));
            agent = await AgentProcess.start({
              backend: this.backend,
              args: this.agentArgs(traps),
            });
            if (round === 0) maps[config] = await readMaps(agent.pid);
            const a = agent.sample();
            measured = await this.loadPair();
            const b = agent.sample();
            under.cpu.push(cpuPercent(a, b));
            under.rssKiB.push(b.rssKiB);
            m5.rssByTraps[config] = Math.max(m5.rssByTraps[config] ?? 0, b.rssKiB);
          }
          if (config === "empty") measured = await this.loadPair();
        } finally {
          obj?.close();
          if (agent) await agent.quit();
        }
        const after = await this.loadPair();
        runs.push({
          round,
          config,
          st: measured!.st,
          mt: measured!.mt,
          baselineSt: (before.st + after.st) / 2,
          baselineMt: (before.mt + after.mt) / 2,
        });
        before = after;
      }
    }
    m5.underM1 = { cpuPercent: summarize(under.cpu), rssKiB: summarize(under.rssKiB) };
    m5.maps = maps;
    const rows: NonNullable<Results["m1"]>["rows"] = [];
    const baseSt = runs.map((r) => r.baselineSt);
    const baseMt = runs.map((r) => r.baselineMt);
    rows.push({
      config: "baseline",
      st: summarize(baseSt),
      mt: summarize(baseMt),
      ratioSt: summarize([]),
      ratioMt: summarize([]),
    });
    for (const config of configs) {
      const mine = runs.filter((r) => r.config === config);
      rows.push({
        config,
        st: summarize(mine.map((r) => r.st)),
        mt: summarize(mine.map((r) => r.mt)),
        ratioSt: summarize(mine.map((r) => r.st / r.baselineSt)),
        ratioMt: summarize(mine.map((r) => r.mt / r.baselineMt)),
      });
    }
    return { threads: this.threads, iters: this.iters, rows, runs };
  }

  async m2(): Promise<Results["m2"]> {
    if (this.iters.st === 0) await this.calibrate();
    const main = await this.m2With(1000);
    for (const traps of [1, 50_000]) {
      const other = await this.m2With(traps);
      main.byTraps.push({
        traps,
        oursNsPerCall: other.oursNsPerCall,
        ratio: other.floors[0].ratio,
      });
    }
    return main;
  }

  async m2With(traps: number): Promise<NonNullable<Results["m2"]>> {
    const names = EMPTY_PROGRAMS[this.backend];
    const agent = await AgentProcess.start({ backend: this.backend, args: this.agentArgs(traps) });
    const obj = attachEmpty(this.objects.empty, this.backend, names);
    try {
      const ourId = progIdOfLink(agent.pid, Number(agent.ready.backendLinkFd));
      if (ourId === null) throw new Error("Cannot find the agent's program id through its link fd");
      const floorIds = names.map((name) => progIdOfFd("self", obj.program(name).fd));
      using _stats = enableBpfStats();
      const read = () => ({
        ours: readProgStats(agent.pid, ourId),
        floors: floorIds.map((id) => (id === null ? null : readProgStats("self", id))),
      });
      const perRound: { ours: number; floors: number[]; runs: number }[] = [];
      for (let round = 0; round < this.profile.m2Rounds; round++) {
        const a = read();
        await this.load(1, this.iters.st);
        const b = read();
        const perCall = (x: { runTimeNs: number; runCnt: number } | null, y: typeof x) =>
          x && y && y.runCnt > x.runCnt ? (y.runTimeNs - x.runTimeNs) / (y.runCnt - x.runCnt) : NaN;
        perRound.push({
          ours: perCall(a.ours, b.ours),
          floors: a.floors.map((f, i) => perCall(f, b.floors[i])),
          runs: (b.ours?.runCnt ?? 0) - (a.ours?.runCnt ?? 0),
        });
      }
      return {
        program: {
          tracepoint: "trap_sys_exit",
          lsm: "trap_lsm_file_open",
          fentry: "trap_fentry_file_open",
          kprobe: "trap_kprobe_file_open",
        }[this.backend],
        traps,
        byTraps: [],
        oursNsPerCall: summarize(perRound.map((r) => r.ours)),
        runsPerRound: summarize(perRound.map((r) => r.runs)),
        floors: names.map((name, i) => ({
          program: name,
          nsPerCall: summarize(perRound.map((r) => r.floors[i])),
          ratio: summarize(perRound.map((r) => r.ours / r.floors[i])),
        })),
      };
    } finally {
      obj.close();
      await agent.quit();
    }
  }

  async m3(m5: Results["m5"]): Promise<Results["m3"]> {
    const trap = this.trapFiles(1)[0];
    const result: Results["m3"] = {
      hits: this.profile.m3Hits,
      intervalUs: this.profile.m3IntervalUs,
      paths: [],
    };
    const add = (path: string, ns: number[], delivered: number) => {
      const us = ns.map((n) => n / 1000);
      result.paths.push({
        path,
        samples: us.length,
        delivered,
        p50Us: percentile(us, 50),
        p99Us: percentile(us, 99),
        p999Us: percentile(us, 99.9),
        maxUs: percentile(us, 100),
      });
    };
    const cpu: number[] = [];
    // (a) + (b): the engine's receipt, and the stdout line as a reader of it receives it.
    {
      const lineNs: number[] = [];
      const agent = await AgentProcess.start({
        backend: this.backend,
        args: this.agentArgs(1000, ["--output", "stdout"]),
        onAlert: (alert, received) => {
          const t = alert["timestamp-ns"];
          if (typeof t === "string") lineNs.push(Number(received - BigInt(t)));
        },
      });
      try {
        const a = agent.sample();
        await runJson(this.bins.trap_hit, [
          trap,
          String(this.profile.m3Hits),
          "1",
          String(this.profile.m3IntervalUs),
        ]);
        const deadline = performance.now() + 10_000;
        while (lineNs.length < this.profile.m3Hits && performance.now() < deadline) await sleep(20);
        const b = agent.sample();
        cpu.push(cpuPercent(a, b));
        m5.underM3RssKiB = Math.max(m5.underM3RssKiB ?? 0, b.rssKiB);
        const stats = await agent.ask("stats", "stats");
        add(
          "kernel -> engine event (AccessEvent in the agent)",
          stats.latenciesNs as number[],
          (stats.latenciesNs as number[]).length,
        );
        add("kernel -> stdout line received", lineNs, lineNs.length);
      } finally {
        await agent.quit();
      }
    }
    // (c): a callback on loopback.
    {
      const callbackNs: number[] = [];
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen() {} },
        async (request) => {
          const received = monotonicClocks().realtimeNs;
          const body = await request.json() as { KiveAlert?: Record<string, unknown> };
          const t = body.KiveAlert?.["timestamp-ns"];
          if (typeof t === "string") callbackNs.push(Number(received - BigInt(t)));
          return new Response(null, { status: 204 });
        },
      );
      const agent = await AgentProcess.start({
        backend: this.backend,
        args: this.agentArgs(1000, [
          "--output",
          "callback",
          "--callback-url",
          `http://127.0.0.1:${server.addr.port}/ingest`,
        ]),
      });
      try {
        const a = agent.sample();
        await runJson(this.bins.trap_hit, [
          trap,
          String(this.profile.m3Hits),
          "1",
          String(this.profile.m3IntervalUs),
        ]);
        const deadline = performance.now() + 15_000;
        while (callbackNs.length < this.profile.m3Hits && performance.now() < deadline) {
          await sleep(20);
        }
        const b = agent.sample();
        cpu.push(cpuPercent(a, b));
        m5.underM3RssKiB = Math.max(m5.underM3RssKiB ?? 0, b.rssKiB);
        add("kernel -> callback POST received (loopback)", callbackNs, callbackNs.length);
      } finally {
        await agent.quit();
        await server.shutdown();
      }
    }
    m5.underM3CpuPercent = summarize(cpu);
    return result;
  }

  async m4(m5: Results["m5"]): Promise<Results["m4"]> {
    const trap = this.trapFiles(1)[0];
    const variants: NonNullable<Results["m4"]>["variants"] = [];
    for (const variant of this.profile.floodVariants) {
      log(`M4 ${variant.name}`);
      const lines = { events: 0, accesses: 0, lost: 0 };
      const extra = ["--output", "stdout", "--aggregate-ms", String(variant.aggregateMs)];
      if (variant.ringBytes) extra.push("--ring-bytes", String(variant.ringBytes));
      const agent = await AgentProcess.start({
        backend: this.backend,
        args: this.agentArgs(1, extra),
        onAlert: (alert) => {
          if (typeof alert["lost-accesses"] === "number") lines.lost += alert["lost-accesses"];
          else {
            lines.events++;
            lines.accesses += typeof alert.count === "number" ? alert.count : 1;
          }
        },
      });
      let made = 0;
      let seconds = 0;
      let bye;
      let a: ProcSample | undefined;
      let b: ProcSample | undefined;
      try {
        a = agent.sample();
        const r = await runJson<{ made: number; seconds: number }>(this.bins.trap_hit, [
          trap,
          String(this.profile.floodPerProc),
          String(this.profile.floodProcs),
          "0",
        ]);
        made = r.made;
        seconds = r.seconds;
        const deadline = performance.now() + 120_000;
        for (;;) {
          const s = await agent.ask("stats", "stats");
          const c = s.counters as { accesses: number; lost: number };
          if (c.accesses + c.lost >= made || performance.now() > deadline) break;
          await sleep(200);
        }
        b = agent.sample();
        await agent.ask("flush", "flushed", 120_000);
      } finally {
        bye = await agent.quit();
      }
      const c = bye.counters as {
        events: number;
        accesses: number;
        aggregated: number;
        lost: number;
      };
      variants.push({
        name: variant.name,
        processes: this.profile.floodProcs,
        made,
        floodSeconds: seconds,
        engine: { events: c.events, accesses: c.accesses, aggregated: c.aggregated, lost: c.lost },
        stdout: { ...lines },
        unaccountedEngine: made - c.accesses - c.lost,
        unaccountedStdout: made - lines.accesses - lines.lost,
        agentCpuPercent: a && b ? cpuPercent(a, b) : NaN,
        agentHwmKiB: b?.hwmKiB ?? NaN,
      });
      if (b) m5.underFloodRssKiB = Math.max(m5.underFloodRssKiB ?? 0, b.hwmKiB);
    }
    return { variants };
  }

  async m5Idle(m5: Results["m5"]): Promise<void> {
    const agent = await AgentProcess.start({ backend: this.backend, args: this.agentArgs(1000) });
    try {
      await sleep(Math.min(1000, this.profile.idleMs));
      const a = agent.sample();
      await sleep(this.profile.idleMs);
      const b = agent.sample();
      m5.idle = { traps: 1000, cpuPercent: cpuPercent(a, b), rssKiB: b.rssKiB, hwmKiB: b.hwmKiB };
      m5.startup = { openMs: Number(agent.ready.openMs), armMs: Number(agent.ready.armMs) };
      if (!m5.maps["agent-1000"]) m5.maps["agent-1000"] = await readMaps(agent.pid);
    } finally {
      await agent.quit();
    }
    const probe = await runAgentOnce(["--backend", this.backend, "--mode", "rss"]);
    m5.rssBreakdownKiB = {
      bare: Number(probe.bare),
      withEngine: Number(probe.withEngine),
      withAgentModules: Number(probe.withAgentModules),
    };
  }

  async m6(): Promise<Results["m6"]> {
    const { m6Pods: pods, m6Traps: traps } = this.profile;
    const rounds: NonNullable<Results["m6"]>["rounds"] = [];
    for (let round = 0; round < this.profile.m6Rounds; round++) {
      log(`M6 round ${round + 1}/${this.profile.m6Rounds}: ${pods} pods x ${traps} traps`);
      const base = await Deno.makeTempDir({ prefix: "kivebpf-bench-m6-" });
      for (let i = 0; i < pods; i++) await Deno.mkdir(`${base}/pod-${i}/etc`, { recursive: true });
      const sleeper = new Deno.Command(this.bins.chroot_sleep, {
        args: [base, String(pods)],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const stdin = sleeper.stdin.getWriter();
      try {
        const pids: number[] = [];
        let text = "";
        const reader = sleeper.stdout.pipeThrough(new TextDecoderStream()).getReader();
        while (pids.length < pods) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
          const lines = text.split("\n");
          text = lines.pop() ?? "";
          for (const line of lines) if (line) pids.push(Number(line.split(" ")[1]));
        }
        reader.cancel().catch(() => {});
        if (pids.length < pods) {
          throw new Error(`chroot_sleep started ${pids.length} of ${pods} processes`);
        }
        const pidsFile = `${base}/pids.json`;
        await Deno.writeTextFile(pidsFile, JSON.stringify(pids));
        // Reconcile mode times itself and answers once, so it runs to completion here.
        const reply = await runAgentOnce([
          "--backend",
          this.backend,
          "--mode",
          "reconcile",
          "--pods",
          String(pods),
          "--traps",
          String(traps),
          "--pids-file",
          pidsFile,
        ]) as unknown as ReconcileRound;
        rounds.push(reply);
      } finally {
        await stdin.close().catch(() => {});
        await sleeper.status;
        await Deno.remove(base, { recursive: true }).catch(() => {});
      }
    }
    return {
      pods,
      trapsPerPod: traps,
      rounds,
      totalMs: summarize(rounds.map((r) => r.totalMs)),
      computeMs: summarize(rounds.map((r) => r.computeMs)),
      plantMs: summarize(rounds.map((r) => r.plantMs)),
      armMs: summarize(rounds.map((r) => r.armMs)),
      rssKiB: summarize(rounds.map((r) => r.rssKiB)),
    };
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      backend: { type: "string", default: "auto" },
      smoke: { type: "boolean", default: false },
      out: { type: "string" },
      only: { type: "string" },
      rounds: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno run -A scripts/bench/bench.ts [--backend B] [--smoke] [--out DIR] [--only M1,..] [--rounds N]",
    );
    return;
  }
  const profile = { ...(values.smoke ? SMOKE : FULL) };
  if (values.rounds) profile.rounds = profile.m2Rounds = Number(values.rounds);
  const only = new Set((values.only ?? "M1,M2,M3,M4,M5,M6").toUpperCase().split(","));
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
    results.m1 = await phase("M1", () => bench.m1(m5));
    results.m2 = await phase("M2", () => bench.m2());
    results.m3 = await phase("M3", () => bench.m3(m5));
    results.m4 = await phase("M4", () => bench.m4(m5));
    await phase("M5", () => bench.m5Idle(m5));
    results.m6 = await phase("M6", () => bench.m6());
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
