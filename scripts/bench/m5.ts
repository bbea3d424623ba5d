/**
 * M5: the agent's CPU and memory while idle.
 *
 * @module
 */
import { AgentProcess } from "./_agent_process.ts";
import { cpuPercent, readMaps } from "./_proc.ts";
import { sleep } from "./_util.ts";
import { type Bench, runAgentOnce } from "./_bench.ts";
import type { Results } from "./_results.ts";
import { describeConfig, MIB, table } from "./_table.ts";
import { fmt, fmtSummary } from "./_stats.ts";

/** Records the idle agent's CPU, memory and start-up times in `m5`. */
export async function m5Idle(bench: Bench, m5: Results["m5"]): Promise<void> {
  const agent = await AgentProcess.start({ backend: bench.backend, args: bench.agentArgs(1000) });
  try {
    await sleep(Math.min(1000, bench.profile.idleMs));
    const a = agent.sample();
    await sleep(bench.profile.idleMs);
    const b = agent.sample();
    m5.idle = { traps: 1000, cpuPercent: cpuPercent(a, b), rssKiB: b.rssKiB, hwmKiB: b.hwmKiB };
    m5.startup = { openMs: Number(agent.ready.openMs), armMs: Number(agent.ready.armMs) };
    if (!m5.maps["agent-1000"]) m5.maps["agent-1000"] = await readMaps(agent.pid);
  } finally {
    await agent.quit();
  }
  const probe = await runAgentOnce(["--backend", bench.backend, "--mode", "rss"]);
  m5.rssBreakdownKiB = {
    bare: Number(probe.bare),
    withEngine: Number(probe.withEngine),
    withAgentModules: Number(probe.withAgentModules),
  };
}

/** The M5 section of the report. */
export function renderM5(out: string[], r: Results): void {
  out.push("## M5 agent CPU and memory");
  out.push("");
  const m5 = r.m5;
  const rows: string[][] = [];
  if (m5.idle) {
    rows.push([
      `idle, ${m5.idle.traps} traps`,
      fmt(m5.idle.cpuPercent, 2),
      fmt(m5.idle.rssKiB / MIB, 1),
    ]);
  }
  if (m5.underM1) {
    rows.push([
      "under M1 load (non-trap opens)",
      fmtSummary(m5.underM1.cpuPercent, 2),
      fmtSummary({
        ...m5.underM1.rssKiB,
        min: m5.underM1.rssKiB.min / MIB,
        median: m5.underM1.rssKiB.median / MIB,
        max: m5.underM1.rssKiB.max / MIB,
      }, 1),
    ]);
  }
  if (m5.underM3CpuPercent) {
    rows.push([
      "under M3 load (1 trap hit per ms)",
      fmtSummary(m5.underM3CpuPercent, 2),
      fmt((m5.underM3RssKiB ?? NaN) / MIB, 1),
    ]);
  }
  if (m5.underFloodRssKiB) {
    rows.push(["M4 flood (peak)", "see M4", fmt(m5.underFloodRssKiB / MIB, 1)]);
  }
  for (const [config, kib] of Object.entries(m5.rssByTraps)) {
    rows.push([`RSS with ${describeConfig(config)}`, "", fmt(kib / MIB, 1)]);
  }
  out.push(table(["state", "CPU % of one CPU", "RSS MiB"], rows));
  out.push("");
  if (m5.rssBreakdownKiB) {
    const b = m5.rssBreakdownKiB;
    out.push(
      `Where the resident memory goes (one process, measured step by step): Deno with the engine and alert ` +
        `modules loaded ${
          fmt(b.bare / MIB, 1)
        } MiB; engine open (reader Worker, libbpf, maps) with 1,000 traps ` +
        `${
          fmt(b.withEngine / MIB, 1)
        } MiB; plus the agent's whole module graph (Kubernetes client, zod) ` +
        `${fmt(b.withAgentModules / MIB, 1)} MiB.`,
    );
    out.push("");
  }
  if (m5.startup) {
    out.push(
      `Engine open (load + attach): ${fmt(m5.startup.openMs)} ms; arming 1,000 traps: ${
        fmt(m5.startup.armMs)
      } ms.`,
    );
    out.push("");
  }
  const mapRows: string[][] = [];
  for (const [config, maps] of Object.entries(m5.maps)) {
    const total = maps.reduce((n, m) => n + m.memlockBytes, 0);
    mapRows.push([
      describeConfig(config),
      maps.map((m) => `${m.name || m.type} ${fmt(m.memlockBytes / 1024 / 1024, 2)}`).join(", "),
      fmt(total / 1024 / 1024, 2),
    ]);
  }
  if (mapRows.length > 0) {
    out.push(
      "BPF map memory (fdinfo memlock, MiB; the trap map is sized to maxTraps = 65,536 whatever is armed):",
    );
    out.push("");
    out.push(table(["agent", "maps", "total MiB"], mapRows));
    out.push("");
  }
}
