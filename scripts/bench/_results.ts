/**
 * The shapes of a benchmark run's results (results.json), shared by the measurements, the
 * goals and the markdown report.
 *
 * @module
 */
import type { BlindWindowsResult } from "./blind_windows.ts";
import type { M6kResult } from "./m6k.ts";
import type { M8Row } from "./m8.ts";
import type { Environment } from "./_env.ts";
import type { MapMemory } from "./_proc.ts";
import type { Summary } from "./_stats.ts";

/** One M1 configuration: ns per open+close and the ratio to the interleaved baseline. */
export interface M1Row {
  config: string;
  st: Summary;
  mt: Summary;
  ratioSt: Summary;
  ratioMt: Summary;
}

/** One M3 path's latency distribution, microseconds. */
export interface LatencyRow {
  path: string;
  samples: number;
  delivered: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

/** One M4 flood. */
export interface FloodRow {
  name: string;
  processes: number;
  made: number;
  floodSeconds: number;
  engine: { events: number; accesses: number; aggregated: number; lost: number };
  stdout: { events: number; accesses: number; lost: number };
  unaccountedEngine: number;
  unaccountedStdout: number;
  agentCpuPercent: number;
  agentHwmKiB: number;
}

/** One M6 reconcile, as agent.ts --mode reconcile reports it. */
export interface ReconcileRound {
  pods: number;
  trapsPerPod: number;
  targets: number;
  planted: number;
  armed: number;
  failureCount: number;
  failures: string[];
  openMs: number;
  computeMs: number;
  plantMs: number;
  armMs: number;
  totalMs: number;
  rssKiB: number;
  hwmKiB: number;
}

/** M1 of one run: the interleaved configurations, summed up per configuration. */
export interface M1Result {
  threads: number;
  iters: { st: number; mt: number };
  rows: M1Row[];
  runs: {
    round: number;
    config: string;
    st: number;
    mt: number;
    baselineSt: number;
    baselineMt: number;
  }[];
}

/** M2 of one run. */
export interface M2Result {
  program: string;
  traps: number;
  /** The same with other numbers of traps armed (the empty program's ratio). */
  byTraps: { traps: number; oursNsPerCall: Summary; ratio: Summary }[];
  oursNsPerCall: Summary;
  runsPerRound: Summary;
  floors: { program: string; nsPerCall: Summary; ratio: Summary }[];
}

/**
 * Phase CG: M1 and M2 with the cgroup prefilter on. M1 configurations: `inside-no-bpf` (load
 * in the trapped cgroup, nothing attached), `filter-off` (agent, filter off), `filter-outside`
 * (filter on, load outside the trapped cgroup), `filter-inside` (filter on, load inside).
 */
export interface CgroupResult {
  /** Why the phase did not run (no cgroup2, not writable). */
  skipped?: string;
  /** The trapped cgroup's directory and id. */
  path?: string;
  id?: string;
  traps?: number;
  m1?: M1Result;
  m2?: (M2Result & { config: string })[];
  /** Trap opens made from inside and from outside the trapped cgroup, and those reported. */
  check?: { hits: number; inside: number; outside: number };
}

/** Everything one run measured. */
export interface Results {
  environment: Environment;
  smoke: boolean;
  phasesSeconds: Record<string, number>;
  totalSeconds?: number;
  loadAverageEnd?: number[];
  m1?: M1Result;
  m2?: M2Result;
  /** Phase CG (M1/M2 with the cgroup filter on). */
  cgroup?: CgroupResult;
  m3?: { hits: number; intervalUs: number; paths: LatencyRow[] };
  m4?: { variants: FloodRow[] };
  m5: {
    idle?: { traps: number; cpuPercent: number; rssKiB: number; hwmKiB: number };
    startup?: { openMs: number; armMs: number };
    underM1?: { cpuPercent: Summary; rssKiB: Summary };
    underM3CpuPercent?: Summary;
    underM3RssKiB?: number;
    underFloodRssKiB?: number;
    rssByTraps: Record<string, number>;
    /** RSS of a Deno process with the bench modules, + engine with 1,000 traps, + agent modules. */
    rssBreakdownKiB?: { bare: number; withEngine: number; withAgentModules: number };
    maps: Record<string, MapMemory[]>;
  };
  m6?: {
    pods: number;
    trapsPerPod: number;
    rounds: ReconcileRound[];
    totalMs: Summary;
    computeMs: Summary;
    plantMs: Summary;
    armMs: Summary;
    rssKiB: Summary;
  };
  /** Phase M6K: the real agent against a real API server (scripts/bench/m6k.ts). */
  m6k?: M6kResult;
  /** Why M6K did not run (no Kubernetes binaries, no cgroup2). */
  m6kSkipped?: string;
  /** Phase BW: accesses through agent and API server faults (scripts/bench/blind_windows.ts). */
  blindWindows?: BlindWindowsResult;
  /** Why BW did not run. */
  blindWindowsSkipped?: string;
  /** Phase M8: status and registration traffic at N simulated nodes (scripts/bench/m8.ts). */
  m8?: M8Row[];
  /** Why M8 did not run. */
  m8Skipped?: string;
}

/** A goal of the issue and whether this run meets it. */
export interface Goal {
  goal: string;
  measured: string;
  status: "met" | "NOT met" | "not measured here";
}
