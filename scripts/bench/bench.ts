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
  readPidLines,
  readProgStats,
} from "./_proc.ts";
import { type ReconcileRound, renderMarkdown, type Results } from "./_report.ts";
import { percentile, summarize } from "./_stats.ts";
import { type Cgroup, createCgroup } from "./_cgroup.ts";
import { blindWindows } from "./blind_windows.ts";
import { m6k, m6kUnavailable } from "./m6k.ts";
import { m8 } from "./m8.ts";

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
  m6kPods: number;
  m6kTraps: number;
  /** How long M6K waits for everything armed after the apply, ms. */
  m6kTimeoutMs: number;
  /** Phase BW: runs of each scenario, and which scenarios (each takes about 45 s). */
  bwRounds: number;
  bwScenarios: string[];
  /** Phase M8: simulated node counts. */
  m8Nodes: number[];
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
  m6kPods: 1000,
  m6kTraps: 10,
  m6kTimeoutMs: 300_000,
  bwRounds: 3,
  bwScenarios: ["takeover", "restart", "upgrade", "outage"],
  m8Nodes: [50, 500, 5000],
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
  m6kPods: 20,
  m6kTraps: 2,
  m6kTimeoutMs: 60_000,
  bwRounds: 1,
  bwScenarios: ["upgrade"],
  m8Nodes: [20],
};

/** Real trap files armed besides the synthetic keys (never opened by the M1 load). */
const REAL_TRAPS = 10;

/** The agent's hook program, by backend (M2). */
const OUR_PROGRAM: Record<Backend, string> = {
  tracepoint: "trap_sys_exit",
  lsm: "trap_lsm_file_open",
  fentry: "trap_fentry_file_open",
  kprobe: "trap_kprobe_file_open",
};

/** Traps armed in phase CG, as in the M1 row the goals are judged on. */
const CG_TRAPS = 1000;

/** Trap opens, from inside and from outside the trapped cgroup, of the filter check of CG. */
const CG_CHECK_HITS = 20;

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

/**
 * A command line that runs `bin args` inside a cgroup: a shell writes its own pid to the
 * cgroup's cgroup.procs, then execs the program (same pid), so every syscall of the program
 * and of the threads and processes it makes happens inside.
 */
function inCgroup(cgroup: Cgroup, bin: string, args: string[]): [string, string[]] {
  return [
    "/bin/sh",
    [
      "-c",
      'echo $$ > "$1" && shift && exec "$@"',
      "sh",
      `${cgroup.path}/cgroup.procs`,
      bin,
      ...args,
    ],
  ];
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

  /**
   * Runs the open+close load; with `cgroup`, in that cgroup (see {@linkcode inCgroup}).
   */
  async load(threads: number, iters: number, cgroup?: Cgroup): Promise<number> {
    const args = [this.dir, String(iters), String(threads)];
    const r = cgroup
      ? await runJson<{ ns_per_op: number }>(...inCgroup(cgroup, this.bins.openclose, args))
      : await runJson<{ ns_per_op: number }>(this.bins.openclose, args);
    return r.ns_per_op;
  }

  async calibrate(): Promise<void> {
    const st = await this.load(1, 20_000);
    const mt = await this.load(this.threads, 20_000);
    const perRun = (ns: number) => Math.max(2000, Math.round((this.profile.loadMs * 1e6) / ns));
    this.iters = { st: perRun(st), mt: perRun(mt) };
    log(`calibrated: ${st.toFixed(0)} ns/op single, ${mt.toFixed(0)} ns/op x${this.threads}`);
  }

  async loadPair(cgroup?: Cgroup): Promise<{ st: number; mt: number }> {
    return {
      st: await this.load(1, this.iters.st, cgroup),
      mt: await this.load(this.threads, this.iters.mt, cgroup),
    };
  }

  /**
   * Runs configurations between baseline load runs (A B A B ...), `rounds` times, and sums
   * them up: each configuration's ns/op, and its ratio to the mean of its two neighbours.
   *
   * @param label for the progress log
   * @param configs names in the order of a round
   * @param measure sets one configuration up, runs the load pair under it, tears it down
   */
  async interleaved(
    label: string,
    configs: string[],
    measure: (config: string, round: number) => Promise<{ st: number; mt: number }>,
  ): Promise<NonNullable<Results["m1"]>> {
    const runs: NonNullable<Results["m1"]>["runs"] = [];
    for (let round = 0; round < this.profile.rounds; round++) {
      log(`${label} round ${round + 1}/${this.profile.rounds}`);
      let before = await this.loadPair();
      for (const config of configs) {
        const measured = await measure(config, round);
        const after = await this.loadPair();
        runs.push({
          round,
          config,
          st: measured.st,
          mt: measured.mt,
          baselineSt: (before.st + after.st) / 2,
          baselineMt: (before.mt + after.mt) / 2,
        });
        before = after;
      }
    }
    const rows: NonNullable<Results["m1"]>["rows"] = [{
      config: "baseline",
      st: summarize(runs.map((r) => r.baselineSt)),
      mt: summarize(runs.map((r) => r.baselineMt)),
      ratioSt: summarize([]),
      ratioMt: summarize([]),
    }];
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
    return { threads: this.threads, iters: { ...this.iters }, rows, runs };
  }

  async m1(m5: Results["m5"]): Promise<Results["m1"]> {
    await this.calibrate();
    const configs = ["empty", ...this.profile.trapCounts.map((n) => `agent-${n}`)];
    const maps: NonNullable<Results["m5"]>["maps"] = {};
    const under: { cpu: number[]; rssKiB: number[] } = { cpu: [], rssKiB: [] };
    const result = await this.interleaved("M1", configs, async (config, round) => {
      if (config === "empty") {
        const obj = attachEmpty(
          this.objects.empty,
          this.backend,
          EMPTY_PROGRAMS[this.backend].slice(0, 1),
        );
        try {
          return await this.loadPair();
        } finally {
          obj.close();
        }
      }
      const traps = Number(config.slice(6));
      const agent = await AgentProcess.start({
        backend: this.backend,
        args: this.agentArgs(traps),
      });
      try {
        if (round === 0) maps[config] = await readMaps(agent.pid);
        const a = agent.sample();
        const measured = await this.loadPair();
        const b = agent.sample();
        under.cpu.push(cpuPercent(a, b));
        under.rssKiB.push(b.rssKiB);
        m5.rssByTraps[config] = Math.max(m5.rssByTraps[config] ?? 0, b.rssKiB);
        return measured;
      } finally {
        await agent.quit();
      }
    });
    m5.underM1 = { cpuPercent: summarize(under.cpu), rssKiB: summarize(under.rssKiB) };
    m5.maps = maps;
    return result;
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

  /**
   * M2 with `traps` armed: per-call run time of the agent's program and of the empty ones.
   *
   * @param traps traps armed
   * @param cgroup with `filter`, the agent's cgroup prefilter is on with this cgroup's id;
   *   with `inside`, the load runs in it
   */
  async m2With(
    traps: number,
    cgroup?: { cgroup: Cgroup; filter: boolean; inside: boolean },
  ): Promise<NonNullable<Results["m2"]>> {
    const names = EMPTY_PROGRAMS[this.backend];
    const filterArgs = cgroup?.filter ? ["--cgroup-filter", String(cgroup.cgroup.id)] : [];
    const loadCgroup = cgroup?.inside ? cgroup.cgroup : undefined;
    const agent = await AgentProcess.start({
      backend: this.backend,
      args: this.agentArgs(traps, filterArgs),
    });
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
        await this.load(1, this.iters.st, loadCgroup);
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
        program: OUR_PROGRAM[this.backend],
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

  /**
   * Phase CG: M1 and M2 with the agent's cgroup prefilter on, for a load outside the trapped
   * cgroup and inside it, next to the same agent with the filter off and to the load inside
   * the cgroup with nothing attached (membership alone should cost nothing).
   */
  async cg(): Promise<Results["cgroup"]> {
    if (this.iters.st === 0) await this.calibrate();
    let cgroup: Cgroup;
    try {
      cgroup = await createCgroup("kivebpf-bench-trapped");
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      log(`CG skipped: ${reason}`);
      return { skipped: reason };
    }
    log(`CG: trapped cgroup ${cgroup.path} (id ${cgroup.id})`);
    try {
      const filter = ["--cgroup-filter", String(cgroup.id)];
      const configs = ["inside-no-bpf", "filter-off", "filter-outside", "filter-inside"];
      const m1 = await this.interleaved("CG M1", configs, async (config) => {
        if (config === "inside-no-bpf") return await this.loadPair(cgroup);
        const agent = await AgentProcess.start({
          backend: this.backend,
          args: this.agentArgs(CG_TRAPS, config === "filter-off" ? [] : filter),
        });
        try {
          const on = agent.ready.cgroupFilter as string[] | null;
          if (config !== "filter-off" && !(on?.length === 1 && on[0] === String(cgroup.id))) {
            throw new Error(`The agent did not turn the cgroup filter on: ${JSON.stringify(on)}`);
          }
          return await this.loadPair(config === "filter-inside" ? cgroup : undefined);
        } finally {
          await agent.quit();
        }
      });
      log("CG M2");
      const m2: NonNullable<Results["cgroup"]>["m2"] = [];
      for (const c of ["filter-off", "filter-outside", "filter-inside"] as const) {
        m2.push({
          config: c,
          ...await this.m2With(CG_TRAPS, {
            cgroup,
            filter: c !== "filter-off",
            inside: c === "filter-inside",
          }),
        });
      }
      const check = await this.cgCheck(cgroup);
      return { path: cgroup.path, id: String(cgroup.id), traps: CG_TRAPS, m1, m2, check };
    } finally {
      await cgroup.remove();
    }
  }

  /**
   * Checks that the filter does what the measurement assumes: with it on, trap opens from
   * inside the trapped cgroup are reported and those from outside are not.
   */
  async cgCheck(cgroup: Cgroup): Promise<NonNullable<Results["cgroup"]>["check"]> {
    const trap = this.trapFiles(1)[0];
    const agent = await AgentProcess.start({
      backend: this.backend,
      args: this.agentArgs(CG_TRAPS, ["--cgroup-filter", String(cgroup.id), "--output", "none"]),
    });
    try {
      const seen = async () => {
        const c = (await agent.ask("stats", "stats")).counters as {
          accesses: number;
          lost: number;
        };
        return c.accesses + c.lost;
      };
      const hits = [trap, String(CG_CHECK_HITS), "1", "1000"];
      const start = await seen();
      await runJson(this.bins.trap_hit, hits);
      await sleep(300);
      const outside = await seen() - start;
      await runJson(...inCgroup(cgroup, this.bins.trap_hit, hits));
      const deadline = performance.now() + 5000;
      let inside = await seen() - start - outside;
      while (inside < CG_CHECK_HITS && performance.now() < deadline) {
        await sleep(50);
        inside = await seen() - start - outside;
      }
      return { hits: CG_CHECK_HITS, inside, outside };
    } finally {
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
        const pids = await readPidLines(sleeper.stdout, pods);
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
    results.m1 = await phase("M1", () => bench.m1(m5));
    results.m2 = await phase("M2", () => bench.m2());
    results.cgroup = await phase("CG", () => bench.cg());
    results.m3 = await phase("M3", () => bench.m3(m5));
    results.m4 = await phase("M4", () => bench.m4(m5));
    await phase("M5", () => bench.m5Idle(m5));
    results.m6 = await phase("M6", () => bench.m6());
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
