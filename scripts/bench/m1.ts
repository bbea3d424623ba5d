/**
 * M1: the cost of the agent on an open+close of a file that is not a trap, for 0 to 50,000
 * traps, against the empty program and no program, interleaved; and the agent's CPU and memory
 * under that load (M5).
 *
 * @module
 */
import { AgentProcess } from "./_agent_process.ts";
import { cpuPercent, readMaps } from "./_proc.ts";
import { summarize } from "./_stats.ts";
import { attachEmpty, type Bench, EMPTY_PROGRAMS } from "./_bench.ts";
import type { Results } from "./_results.ts";
import { m1Table } from "./_table.ts";

/** Runs M1 (and records M5 under load in `m5`). */
export async function m1(bench: Bench, m5: Results["m5"]): Promise<Results["m1"]> {
  await bench.calibrate();
  const configs = ["empty", ...bench.profile.trapCounts.map((n) => `agent-${n}`)];
  const maps: NonNullable<Results["m5"]>["maps"] = {};
  const under: { cpu: number[]; rssKiB: number[] } = { cpu: [], rssKiB: [] };
  const result = await bench.interleaved("M1", configs, async (config, round) => {
    if (config === "empty") {
      const obj = attachEmpty(
        bench.objects.empty,
        bench.backend,
        EMPTY_PROGRAMS[bench.backend].slice(0, 1),
      );
      try {
        return await bench.loadPair();
      } finally {
        obj.close();
      }
    }
    const traps = Number(config.slice(6));
    const agent = await AgentProcess.start({
      backend: bench.backend,
      args: bench.agentArgs(traps),
    });
    try {
      if (round === 0) maps[config] = await readMaps(agent.pid);
      const a = agent.sample();
      const measured = await bench.loadPair();
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

/** The M1 section of the report. */
export function renderM1(out: string[], r: Results): void {
  if (r.m1) {
    out.push("## M1 non-trap open+close, ns/op");
    out.push("");
    out.push(
      `A small C loop opens and closes a file that is not a trap (${r.m1.iters.st} iterations single-threaded, ` +
        `${r.m1.iters.mt} per thread with ${r.m1.threads} threads, one per CPU). Every configuration runs ` +
        `between two baseline runs (A B A B ...); the ratio is to the mean of its two neighbours. ` +
        `median (min-max) over ${r.m1.runs.length / Math.max(1, r.m1.rows.length - 1)} rounds.`,
    );
    out.push("");
    out.push(m1Table(r.m1));
    out.push("");
  }
}
