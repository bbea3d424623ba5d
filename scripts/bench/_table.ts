/**
 * Markdown helpers every section of the benchmark report uses.
 *
 * @module
 */
import type { M1Result } from "./_results.ts";
import { fmtSummary } from "./_stats.ts";

/** KiB per MiB, for memory columns. */
export const MIB = 1024;

/** A markdown table. */
export function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ].join("\n");
}

const CG_CONFIGS: Record<string, string> = {
  "inside-no-bpf": "no BPF, load inside the trapped cgroup",
  "filter-off": "agent, cgroup filter off (every process checked)",
  "filter-outside": "agent, cgroup filter on, load OUTSIDE the trapped cgroup",
  "filter-inside": "agent, cgroup filter on, load INSIDE the trapped cgroup",
};

/** A human label for an M1/CG configuration name. */
export function describeConfig(config: string): string {
  if (config === "baseline") return "baseline (no BPF)";
  if (config === "empty") return "empty BPF program on the hook";
  if (config in CG_CONFIGS) return CG_CONFIGS[config];
  return `agent, ${Number(config.slice(6)).toLocaleString("en-US")} traps`;
}

/** The M1 table (also CG's, with its own labels). */
export function m1Table(m1: M1Result, label = (config: string) => describeConfig(config)): string {
  return table(
    ["configuration", "1 thread ns/op", "ratio", `${m1.threads} threads ns/op`, "ratio"],
    m1.rows.map((row) => [
      label(row.config),
      fmtSummary(row.st),
      row.ratioSt.n ? fmtSummary(row.ratioSt, 3) : "1",
      fmtSummary(row.mt),
      row.ratioMt.n ? fmtSummary(row.ratioMt, 3) : "1",
    ]),
  );
}

/** The section of phase CG. */
