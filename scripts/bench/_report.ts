/**
 * The markdown report of a benchmark run: the environment, then each measurement's own
 * section (rendered by its file), then the goals.
 *
 * @module
 */
import { checkGoals } from "./_goals.ts";
import type { Results } from "./_results.ts";
import { table } from "./_table.ts";
import { fmt } from "./_stats.ts";
import { renderCgroup } from "./cg.ts";
import { renderM1 } from "./m1.ts";
import { renderM2 } from "./m2.ts";
import { renderM3 } from "./m3.ts";
import { renderM4 } from "./m4.ts";
import { renderM5 } from "./m5.ts";
import { renderM6 } from "./m6.ts";
import { renderM6k } from "./m6k.ts";
import { renderBlindWindows } from "./blind_windows.ts";
import { renderM8 } from "./m8.ts";

export type * from "./_results.ts";
export { checkGoals } from "./_goals.ts";

/**
 * Renders the results as markdown: environment, one section per measurement, the goals.
 *
 * @param r the results
 * @returns the document (ends with a newline)
 */
export function renderMarkdown(r: Results): string {
  const e = r.environment;
  const out: string[] = [];
  out.push(`# kivebpf benchmark results${r.smoke ? " (SMOKE RUN: the numbers mean nothing)" : ""}`);
  out.push("");
  out.push("## Environment");
  out.push("");
  const mitigations = Object.entries(e.mitigations).map(([k, v]) => `${k}: ${v}`).join("; ");
  out.push(table(["", ""], [
    ["CPU", `${e.cpuModel} (${e.cpus} CPUs)`],
    ["kernel", e.kernel + (e.vm ? " (VM kernel matrix, software emulation)" : "")],
    ["backend", e.backend],
    [
      "mitigations",
      `${mitigations || "n/a"}${
        e.mitigationsCmdline ? ` (mitigations=${e.mitigationsCmdline})` : ""
      }`,
    ],
    ["Deno", e.deno],
    ["libbpf", e.libbpf],
    ["commit", `${e.commit}${e.dirty ? " (with uncommitted changes)" : ""}`],
    ["BPF JIT", e.bpfJit],
    [
      "load average",
      `${e.loadAverage.join(" ")} at start, ${
        r.loadAverageEnd?.map((x) => x.toFixed(2)).join(" ") ?? "?"
      } at end`,
    ],
    ["started", e.startedAt],
    [
      "duration",
      `${fmt(r.totalSeconds)} s (${
        Object.entries(r.phasesSeconds).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(", ")
      })`,
    ],
  ]));
  out.push("");
  renderM1(out, r);
  renderM2(out, r);
  if (r.cgroup) renderCgroup(r.cgroup, out);
  renderM3(out, r);
  renderM4(out, r);
  renderM5(out, r);
  renderM6(out, r);
  if (r.m6k) renderM6k(out, r.m6k);
  else if (r.m6kSkipped) {
    out.push("## M6K reconcile scale, real agent and API server");
    out.push("");
    out.push(`Skipped: ${r.m6kSkipped}.`);
    out.push("");
  }
  if (r.blindWindows) renderBlindWindows(out, r.blindWindows);
  else if (r.blindWindowsSkipped) {
    out.push("## BW blind windows", "", `Skipped: ${r.blindWindowsSkipped}.`, "");
  }
  if (r.m8 || r.m8Skipped) {
    out.push("## M8 status and registrations at N simulated nodes", "");
    out.push(r.m8 ? renderM8(r.m8) : `Skipped: ${r.m8Skipped}.`, "");
  }
  out.push("## Goals (issue 6)");
  out.push("");
  out.push(
    table(["goal", "measured", "status"], checkGoals(r).map((g) => [g.goal, g.measured, g.status])),
  );
  out.push("");
  return out.join("\n");
}
