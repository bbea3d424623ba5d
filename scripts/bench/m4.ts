/**
 * M4: a flood of trap opens from several processes: every access delivered or counted lost.
 *
 * @module
 */
import { AgentProcess } from "./_agent_process.ts";
import { cpuPercent, type ProcSample } from "./_proc.ts";
import { sleep } from "./_util.ts";
import { type Bench, log, runJson } from "./_bench.ts";
import type { Results } from "./_results.ts";
import { MIB, table } from "./_table.ts";
import { fmt } from "./_stats.ts";

/** Runs M4 for each flood variant of the profile. */
export async function m4(bench: Bench, m5: Results["m5"]): Promise<Results["m4"]> {
  const trap = bench.trapFiles(1)[0];
  const variants: NonNullable<Results["m4"]>["variants"] = [];
  for (const variant of bench.profile.floodVariants) {
    log(`M4 ${variant.name}`);
    const lines = { events: 0, accesses: 0, lost: 0 };
    const extra = ["--output", "stdout", "--aggregate-ms", String(variant.aggregateMs)];
    if (variant.ringBytes) extra.push("--ring-bytes", String(variant.ringBytes));
    const agent = await AgentProcess.start({
      backend: bench.backend,
      args: bench.agentArgs(1, extra),
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
      const r = await runJson<{ made: number; seconds: number }>(bench.bins.trap_hit, [
        trap,
        String(bench.profile.floodPerProc),
        String(bench.profile.floodProcs),
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
      processes: bench.profile.floodProcs,
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

/** The M4 section of the report. */
export function renderM4(out: string[], r: Results): void {
  if (r.m4) {
    out.push("## M4 flood accounting");
    out.push("");
    out.push(
      "Opens of one trap file in a tight loop from several processes. made = successful opens; engine = the " +
        "engine's counters (accesses = delivered events + aggregated repeats); stdout = the alert lines the agent " +
        "wrote (sum of `count`, and `lost-accesses` of loss lines). unaccounted = made - accesses - lost.",
    );
    out.push("");
    out.push(table(
      [
        "variant",
        "made",
        "events",
        "aggregated",
        "lost",
        "unaccounted (engine)",
        "stdout accesses + lost",
        "unaccounted (stdout)",
        "agent CPU %",
        "agent peak RSS MiB",
      ],
      r.m4.variants.map((v) => [
        `${v.name} (${v.processes} processes, ${fmt(v.floodSeconds, 1)} s)`,
        String(v.made),
        String(v.engine.events),
        String(v.engine.aggregated),
        String(v.engine.lost),
        String(v.unaccountedEngine),
        `${v.stdout.accesses} + ${v.stdout.lost}`,
        String(v.unaccountedStdout),
        fmt(v.agentCpuPercent),
        fmt(v.agentHwmKiB / MIB, 1),
      ]),
    ));
    out.push("");
  }
}
