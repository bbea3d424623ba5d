import type { Results } from "./_results.ts";
/**
 * What every benchmark measurement shares: the run profiles, the agent's hook programs and the
 * empty ones, the helpers that run the loads and the agent, and {@linkcode Bench}, the context
 * of one run (backend, files, compiled loads) with the interleaved A B A B driver.
 *
 * @module
 */
import { BpfObject } from "../../src/bpf/mod.ts";
import type { Backend } from "../../src/engine/mod.ts";
import { REPO } from "./_build.ts";
import { summarize } from "./_stats.ts";
import type { Cgroup } from "./_cgroup.ts";

/** How long and how often each measurement runs. */
export interface Profile {
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

/** The full run. */
export const FULL: Profile = {
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

/** The smoke run: every measurement for a moment; its numbers mean nothing. */
export const SMOKE: Profile = {
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
export const REAL_TRAPS = 10;

/** The agent's hook program, by backend (M2). */
export const OUR_PROGRAM: Record<Backend, string> = {
  tracepoint: "trap_sys_exit",
  lsm: "trap_lsm_file_open",
  fentry: "trap_fentry_file_open",
  kprobe: "trap_kprobe_file_open",
};

/** Traps armed in phase CG, as in the M1 row the goals are judged on. */
export const CG_TRAPS = 1000;

/** Trap opens, from inside and from outside the trapped cgroup, of the filter check of CG. */
export const CG_CHECK_HITS = 20;

/** The empty programs of each backend (M1, M2 floors). */
export const EMPTY_PROGRAMS: Record<Backend, string[]> = {
  tracepoint: ["empty_sys_exit", "filter_sys_exit"],
  lsm: ["empty_lsm_file_open"],
  fentry: ["empty_fentry_file_open"],
  kprobe: ["empty_kprobe_file_open"],
};

/** A progress line on stderr. */
export function log(message: string): void {
  console.error(`bench: ${message}`);
}

/** Runs a load program and parses the JSON of its last line. */
export async function runJson<T>(bin: string, args: string[]): Promise<T> {
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
export async function runAgentOnce(
  args: string[],
): Promise<Record<string, unknown> & { type: string }> {
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
export function inCgroup(cgroup: Cgroup, bin: string, args: string[]): [string, string[]] {
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
export function attachEmpty(path: string, backend: Backend, names: string[]): BpfObject {
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

/** One run of the suite: its profile, backend, files and compiled pieces. */
export class Bench {
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
}
