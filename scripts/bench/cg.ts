/**
 * Phase CG: M1 and M2 with the engine's cgroup prefilter on, for loads inside and outside the
 * trapped cgroup, and a check that the filter lets through exactly what it should.
 *
 * @module
 */
import { AgentProcess } from "./_agent_process.ts";
import { type Cgroup, createCgroup } from "./_cgroup.ts";
import { sleep } from "./_util.ts";
import { type Bench, CG_CHECK_HITS, CG_TRAPS, inCgroup, log, runJson } from "./_bench.ts";
import { m2With } from "./m2.ts";
import type { Results } from "./_results.ts";
import { describeConfig, m1Table, table } from "./_table.ts";
import { fmtSummary } from "./_stats.ts";
import type { CgroupResult } from "./_results.ts";

/**
 * Phase CG: M1 and M2 with the agent's cgroup prefilter on, for a load outside the trapped
 * cgroup and inside it, next to the same agent with the filter off and to the load inside
 * the cgroup with nothing attached (membership alone should cost nothing).
 */
export async function cg(bench: Bench): Promise<Results["cgroup"]> {
  if (bench.iters.st === 0) await bench.calibrate();
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
    const m1 = await bench.interleaved("CG M1", configs, async (config) => {
      if (config === "inside-no-bpf") return await bench.loadPair(cgroup);
      const agent = await AgentProcess.start({
        backend: bench.backend,
        args: bench.agentArgs(CG_TRAPS, config === "filter-off" ? [] : filter),
      });
      try {
        const on = agent.ready.cgroupFilter as string[] | null;
        if (config !== "filter-off" && !(on?.length === 1 && on[0] === String(cgroup.id))) {
          throw new Error(`The agent did not turn the cgroup filter on: ${JSON.stringify(on)}`);
        }
        return await bench.loadPair(config === "filter-inside" ? cgroup : undefined);
      } finally {
        await agent.quit();
      }
    });
    log("CG M2");
    const m2: NonNullable<Results["cgroup"]>["m2"] = [];
    for (const c of ["filter-off", "filter-outside", "filter-inside"] as const) {
      m2.push({
        config: c,
        ...await m2With(bench, CG_TRAPS, {
          cgroup,
          filter: c !== "filter-off",
          inside: c === "filter-inside",
        }),
      });
    }
    const check = await cgCheck(bench, cgroup);
    return { path: cgroup.path, id: String(cgroup.id), traps: CG_TRAPS, m1, m2, check };
  } finally {
    await cgroup.remove();
  }
}

/**
 * Checks that the filter does what the measurement assumes: with it on, trap opens from
 * inside the trapped cgroup are reported and those from outside are not.
 */
export async function cgCheck(
  bench: Bench,
  cgroup: Cgroup,
): Promise<NonNullable<Results["cgroup"]>["check"]> {
  const trap = bench.trapFiles(1)[0];
  const agent = await AgentProcess.start({
    backend: bench.backend,
    args: bench.agentArgs(CG_TRAPS, ["--cgroup-filter", String(cgroup.id), "--output", "none"]),
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
    await runJson(bench.bins.trap_hit, hits);
    await sleep(300);
    const outside = await seen() - start;
    await runJson(...inCgroup(cgroup, bench.bins.trap_hit, hits));
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

/** The CG section of the report. */
export function renderCgroup(cg: CgroupResult, out: string[]): void {
  out.push("## M1/M2 with the cgroup filter on (trapped containers)");
  out.push("");
  if (cg.skipped || !cg.m1 || !cg.m2) {
    out.push(`Not measured: ${cg.skipped ?? "no results"}.`);
    out.push("");
    return;
  }
  const traps = (cg.traps ?? 0).toLocaleString("en-US");
  out.push(
    `The "trapped container" is a cgroup2 directory made for the run (\`${cg.path}\`, id ${cg.id}); ` +
      `the agent (${traps} traps) turns its cgroup filter on with that id only. Outside: the open+close ` +
      "load runs in its usual cgroup, which is not in the filter. Inside: it is moved into the trapped " +
      "cgroup (a shell writes its pid to cgroup.procs, then execs it), so every open takes the full path. " +
      "Every configuration runs between two baseline runs (load outside, nothing attached), as in M1; " +
      `median (min-max) over ${
        cg.m1.runs.length / Math.max(1, cg.m1.rows.length - 1)
      } rounds, ${cg.m1.iters.st} iterations single-threaded, ${cg.m1.iters.mt} per thread with ` +
      `${cg.m1.threads} threads.`,
  );
  out.push("");
  out.push(m1Table(cg.m1, (config) => {
    const text = describeConfig(config);
    return config.startsWith("filter-") ? `${text}, ${traps} traps` : text;
  }));
  out.push("");
  const m2 = cg.m2;
  const floors = m2[0].floors.map((f) => f.program);
  out.push(
    `M2 with the same agent: \`${
      m2[0].program
    }\` per call (bpf_stats run_time_ns / run_cnt) under ` +
      "the single-threaded load, with the empty program(s) attached to the same hook at the same time. " +
      "The hook runs for every syscall of every process: the per-call figure averages the load's " +
      "calls with those of everything else on the machine.",
  );
  out.push("");
  out.push(table(
    [
      "case",
      `${m2[0].program} ns per call`,
      ...floors.flatMap((f) => [`${f} ns per call`, `multiple of ${f}`]),
      "calls per round",
    ],
    m2.map((c) => [
      describeConfig(c.config),
      fmtSummary(c.oursNsPerCall, 1),
      ...c.floors.flatMap((f) => [fmtSummary(f.nsPerCall, 1), fmtSummary(f.ratio, 2)]),
      fmtSummary(c.runsPerRound),
    ]),
  ));
  out.push("");
  if (cg.check) {
    const ok = cg.check.inside === cg.check.hits && cg.check.outside === 0;
    out.push(
      `Filter check (filter on): of ${cg.check.hits} trap opens from inside the trapped cgroup the ` +
        `agent saw ${cg.check.inside}, of ${cg.check.hits} from outside ${cg.check.outside} ` +
        `(expected ${cg.check.hits} and 0: ${ok ? "as expected" : "NOT as expected"}).`,
    );
    out.push("");
  }
}
