/**
 * Phase BW of the benchmark: the blind-window scenarios of tests/chaos/_chaos.ts (one
 * access every 100 ms while (a) the leader is SIGKILLed with a second agent waiting, (b) the only
 * agent is SIGKILLed and restarted, (c) the agent is upgraded, (d) the API server is down for
 * 30 s) against an API server of its own, `--rounds` times each. Prints one JSON line on stdout:
 * the tallies. Run as a child of bench.ts (its fixture leaves servers open, so it exits itself).
 *
 * deno run -A scripts/bench/blind_windows.ts [--rounds N] [--scenarios takeover,restart,upgrade,outage]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { REPO } from "./_build.ts";
import type { ScenarioTally } from "../../tests/chaos/_chaos.ts";
import { table } from "./_table.ts";

/** What the phase reports. */
export interface BlindWindowsResult {
  rounds: number;
  tallies: ScenarioTally[];
}

/**
 * Runs the phase in a child process (it needs the Kubernetes binaries and the BPF object).
 *
 * @param rounds Runs of each scenario.
 * @param scenarios Which scenarios (names of `SCENARIOS`).
 * @param log Progress lines.
 * @returns The tallies of every run.
 */
export async function blindWindows(
  rounds: number,
  scenarios: string[],
  log: (line: string) => void,
): Promise<BlindWindowsResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${REPO}scripts/bench/blind_windows.ts`,
      "--rounds",
      `${rounds}`,
      "--scenarios",
      scenarios.join(","),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const tail: string[] = [];
  const readStderr = async () => {
    let buffer = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop() ?? "";
      for (const line of parts) {
        tail.push(line);
        if (tail.length > 60) tail.shift();
        if (line.includes("made ") || line.startsWith("round ")) log(`BW ${line}`);
      }
    }
  };
  const [stdout, , status] = await Promise.all([
    new Response(child.stdout).text(),
    readStderr(),
    child.status,
  ]);
  const last = stdout.trim().split("\n").pop() ?? "";
  if (!status.success || !last.startsWith("{")) {
    throw new Error(`phase BW failed (exit ${status.code}):\n${tail.join("\n")}`);
  }
  return JSON.parse(last);
}

async function run(command: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, { args, stdout: "null" }).output();
  if (code !== 0) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { rounds: { type: "string" }, scenarios: { type: "string" } },
  });
  const rounds = Number(values.rounds ?? "1");
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError("--rounds must be 1 or more");
  const names = (values.scenarios ?? "takeover,restart,upgrade,outage").split(",");
  const dir = await Deno.makeTempDir({ prefix: "kivebpf-bench-bw-api-" });
  let code = 0;
  try {
    await run("bash", [`${REPO}scripts/apiserver.sh`, "start", dir]);
    Deno.env.set("KUBECONFIG", `${dir}/kubeconfig`);
    Deno.env.set("KIVEBPF_KUBECTL", `${REPO}.cache/k8s/bin/kubectl`);
    // Imported only now: the fixture installs the API on the server KUBECONFIG names.
    const { SCENARIOS } = await import("../../tests/chaos/_chaos.ts");
    const unknown = names.filter((name) => !Object.hasOwn(SCENARIOS, name));
    if (unknown.length > 0) {
      throw new RangeError(
        `--scenarios: unknown ${unknown.join(", ")}; known: ${Object.keys(SCENARIOS).join(", ")}`,
      );
    }
    const tallies: ScenarioTally[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const name of names) {
        console.error(`round ${round + 1}/${rounds}: ${name}`);
        tallies.push(await SCENARIOS[name as keyof typeof SCENARIOS]());
      }
    }
    console.log(JSON.stringify({ rounds, tallies } satisfies BlindWindowsResult));
  } catch (error) {
    console.error(error);
    code = 1;
  } finally {
    await run("bash", [`${REPO}scripts/apiserver.sh`, "stop", dir]).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  Deno.exit(code);
}

if (import.meta.main) await main();
const SCENARIO_LABELS: Record<string, string> = {
  takeover: "(a) leader SIGKILLed, second agent takes over",
  restart: "(b) only agent SIGKILLed, restarted 3 s later",
  upgrade: "(c) upgrade: SIGTERM, new agent at once",
  outage: "(d) API server down for 30 s",
};

/** This phase's section of the report. */
export function renderBlindWindows(out: string[], bw: BlindWindowsResult): void {
  out.push("## BW blind windows (one access every 100 ms through each fault)");
  out.push("");
  out.push(`${bw.rounds} round(s) of each scenario; late = delivered over 2 s after the access.`);
  out.push("");
  const rows = Object.keys(SCENARIO_LABELS).map((name) => {
    const runs = bw.tallies.filter((t) => t.scenario === name);
    const range = (values: number[], digits = 0) => {
      if (values.length === 0) return "-";
      const [lo, hi] = [Math.min(...values), Math.max(...values)].map((v) => v.toFixed(digits));
      return lo === hi ? lo : `${lo}-${hi}`;
    };
    return [
      SCENARIO_LABELS[name],
      range(runs.map((t) => t.made)),
      range(runs.map((t) => t.delivered)),
      range(runs.map((t) => t.late)),
      range(runs.map((t) => t.maxDelayMs / 1000), 1),
      range(runs.map((t) => t.lost)),
      range(runs.map((t) => t.unaccounted)),
    ];
  });
  out.push(table(
    ["scenario", "made", "delivered", "late", "longest delay (s)", "counted lost", "unaccounted"],
    rows,
  ));
  out.push("");
}
