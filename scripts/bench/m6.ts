/**
 * M6: reconcile scale without Kubernetes: computing, planting and arming 1,000 pods x 10 traps.
 *
 * @module
 */
import { readPidLines } from "./_proc.ts";
import type { ReconcileRound, Results } from "./_results.ts";
import { summarize } from "./_stats.ts";
import { type Bench, log, runAgentOnce } from "./_bench.ts";
import { MIB, table } from "./_table.ts";
import { fmtSummary } from "./_stats.ts";

/** Runs M6 for the profile's pods and traps. */
export async function m6(bench: Bench): Promise<Results["m6"]> {
  const { m6Pods: pods, m6Traps: traps } = bench.profile;
  const rounds: NonNullable<Results["m6"]>["rounds"] = [];
  for (let round = 0; round < bench.profile.m6Rounds; round++) {
    log(`M6 round ${round + 1}/${bench.profile.m6Rounds}: ${pods} pods x ${traps} traps`);
    const base = await Deno.makeTempDir({ prefix: "kivebpf-bench-m6-" });
    for (let i = 0; i < pods; i++) await Deno.mkdir(`${base}/pod-${i}/etc`, { recursive: true });
    const sleeper = new Deno.Command(bench.bins.chroot_sleep, {
      args: [base, String(pods)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const stdin = sleeper.stdin.getWriter();
    try {
      const pids = await readPidLines(sleeper.stdout, pods);
      if (pids.length < pods) {
        throw new Error(`chroot_sleep started ${pids.length} of ${pods} processes`);
      }
      const pidsFile = `${base}/pids.json`;
      await Deno.writeTextFile(pidsFile, JSON.stringify(pids));
      // Reconcile mode times itself and answers once, so it runs to completion here.
      const reply = await runAgentOnce([
        "--backend",
        bench.backend,
        "--mode",
        "reconcile",
        "--pods",
        String(pods),
        "--traps",
        String(traps),
        "--pids-file",
        pidsFile,
      ]) as unknown as ReconcileRound;
      rounds.push(reply);
    } finally {
      await stdin.close().catch(() => {});
      await sleeper.status;
      await Deno.remove(base, { recursive: true }).catch(() => {});
    }
  }
  return {
    pods,
    trapsPerPod: traps,
    rounds,
    totalMs: summarize(rounds.map((r) => r.totalMs)),
    computeMs: summarize(rounds.map((r) => r.computeMs)),
    plantMs: summarize(rounds.map((r) => r.plantMs)),
    armMs: summarize(rounds.map((r) => r.armMs)),
    rssKiB: summarize(rounds.map((r) => r.rssKiB)),
  };
}

/** The M6 section of the report. */
export function renderM6(out: string[], r: Results): void {
  if (r.m6) {
    out.push("## M6 reconcile scale");
    out.push("");
    out.push(
      `${r.m6.pods} Pod objects x ${r.m6.trapsPerPod} traps, one policy. Each pod's container init is a real process ` +
        "chrooted into its own root; the agent's pieces run in one process with the real engine: computeDesired " +
        "(with podView and validateSpec), planting every trap file through /proc/<pid>/root (ensureTrapFile), " +
        "KernelArms.sync. Not covered: the API server watch, the procfs scan that finds container processes, " +
        "registration ConfigMaps. median (min-max) ms.",
    );
    out.push("");
    out.push(table(
      ["step", "ms"],
      [
        ["desired state (validate + podView + computeDesired)", fmtSummary(r.m6.computeMs, 1)],
        ["plant trap files", fmtSummary(r.m6.plantMs, 1)],
        ["arm in the kernel (KernelArms.sync)", fmtSummary(r.m6.armMs, 1)],
        ["total, policy list to all inodes armed", fmtSummary(r.m6.totalMs, 1)],
        [
          "process RSS after, MiB",
          fmtSummary({
            ...r.m6.rssKiB,
            min: r.m6.rssKiB.min / MIB,
            median: r.m6.rssKiB.median / MIB,
            max: r.m6.rssKiB.max / MIB,
          }, 1),
        ],
      ],
    ));
    const last = r.m6.rounds.at(-1);
    if (last) {
      out.push("");
      out.push(`Armed ${last.armed} of ${last.targets} targets (${last.failureCount} failures).`);
    }
    out.push("");
  }
}
