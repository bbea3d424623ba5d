/**
 * M2: the BPF run time per call of the agent's program and of an empty one (bpf_stats), the
 * floor of what the agent can cost.
 *
 * @module
 */
import { AgentProcess } from "./_agent_process.ts";
import { enableBpfStats, progIdOfFd, progIdOfLink, readProgStats } from "./_proc.ts";
import { summarize } from "./_stats.ts";
import type { Cgroup } from "./_cgroup.ts";
import { attachEmpty, type Bench, EMPTY_PROGRAMS, OUR_PROGRAM } from "./_bench.ts";
import type { Results } from "./_results.ts";
import { table } from "./_table.ts";
import { fmtSummary } from "./_stats.ts";

/** Runs M2 at 1,000 traps, with 1 and 50,000 for comparison. */
export async function m2(bench: Bench): Promise<Results["m2"]> {
  if (bench.iters.st === 0) await bench.calibrate();
  const main = await m2With(bench, 1000);
  for (const traps of [1, 50_000]) {
    const other = await m2With(bench, traps);
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
export async function m2With(
  bench: Bench,
  traps: number,
  cgroup?: { cgroup: Cgroup; filter: boolean; inside: boolean },
): Promise<NonNullable<Results["m2"]>> {
  const names = EMPTY_PROGRAMS[bench.backend];
  const filterArgs = cgroup?.filter ? ["--cgroup-filter", String(cgroup.cgroup.id)] : [];
  const loadCgroup = cgroup?.inside ? cgroup.cgroup : undefined;
  const agent = await AgentProcess.start({
    backend: bench.backend,
    args: bench.agentArgs(traps, filterArgs),
  });
  const obj = attachEmpty(bench.objects.empty, bench.backend, names);
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
    for (let round = 0; round < bench.profile.m2Rounds; round++) {
      const a = read();
      await bench.load(1, bench.iters.st, loadCgroup);
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
      program: OUR_PROGRAM[bench.backend],
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

/** The M2 section of the report. */
export function renderM2(out: string[], r: Results): void {
  if (r.m2) {
    out.push("## M2 BPF run time per call (kernel bpf_stats), the floor");
    out.push("");
    out.push(
      `\`${r.m2.program}\` of an agent with ${r.m2.traps} traps and the empty program(s) attached to the same ` +
        `hook at the same time, under the single-threaded M1 load (${
          fmtSummary(r.m2.runsPerRound)
        } calls per round). ` +
        "run_time_ns / run_cnt, which includes the stats' own clock reads.",
    );
    out.push("");
    out.push(table(
      ["program", "ns per call", "ours as a multiple of it"],
      [
        [`${r.m2.program} (the agent)`, fmtSummary(r.m2.oursNsPerCall, 1), "1"],
        ...r.m2.floors.map((f) => [f.program, fmtSummary(f.nsPerCall, 1), fmtSummary(f.ratio, 2)]),
      ],
    ));
    out.push("");
    if (r.m2.byTraps.length > 0) {
      out.push("The agent's program with other numbers of traps armed (separate runs):");
      out.push("");
      out.push(table(
        ["traps armed", `${r.m2.program} ns per call`, `multiple of ${r.m2.floors[0].program}`],
        [
          [
            String(r.m2.traps),
            fmtSummary(r.m2.oursNsPerCall, 1),
            fmtSummary(r.m2.floors[0].ratio, 2),
          ],
          ...r.m2.byTraps.map((
            b,
          ) => [String(b.traps), fmtSummary(b.oursNsPerCall, 1), fmtSummary(b.ratio, 2)]),
        ],
      ));
      out.push("");
    }
  }
}
