/**
 * M3: trap-hit latency, from the access to the engine, to the stdout line and to a callback.
 *
 * @module
 */
import { monotonicClocks } from "../../src/bpf/mod.ts";
import { AgentProcess } from "./_agent_process.ts";
import { cpuPercent } from "./_proc.ts";
import { percentile, summarize } from "./_stats.ts";
import { sleep } from "./_util.ts";
import { type Bench, runJson } from "./_bench.ts";
import type { Results } from "./_results.ts";
import { table } from "./_table.ts";
import { fmt } from "./_stats.ts";

/** Runs M3 (and records the agent's memory by trap count in `m5`). */
export async function m3(bench: Bench, m5: Results["m5"]): Promise<Results["m3"]> {
  const trap = bench.trapFiles(1)[0];
  const result: Results["m3"] = {
    hits: bench.profile.m3Hits,
    intervalUs: bench.profile.m3IntervalUs,
    paths: [],
  };
  const add = (path: string, ns: number[], delivered: number) => {
    const us = ns.map((n) => n / 1000);
    result.paths.push({
      path,
      samples: us.length,
      delivered,
      p50Us: percentile(us, 50),
      p99Us: percentile(us, 99),
      p999Us: percentile(us, 99.9),
      maxUs: percentile(us, 100),
    });
  };
  const cpu: number[] = [];
  // (a) + (b): the engine's receipt, and the stdout line as a reader of it receives it.
  {
    const lineNs: number[] = [];
    const agent = await AgentProcess.start({
      backend: bench.backend,
      args: bench.agentArgs(1000, ["--output", "stdout"]),
      onAlert: (alert, received) => {
        const t = alert["timestamp-ns"];
        if (typeof t === "string") lineNs.push(Number(received - BigInt(t)));
      },
    });
    try {
      const a = agent.sample();
      await runJson(bench.bins.trap_hit, [
        trap,
        String(bench.profile.m3Hits),
        "1",
        String(bench.profile.m3IntervalUs),
      ]);
      const deadline = performance.now() + 10_000;
      while (lineNs.length < bench.profile.m3Hits && performance.now() < deadline) await sleep(20);
      const b = agent.sample();
      cpu.push(cpuPercent(a, b));
      m5.underM3RssKiB = Math.max(m5.underM3RssKiB ?? 0, b.rssKiB);
      const stats = await agent.ask("stats", "stats");
      add(
        "kernel -> engine event (AccessEvent in the agent)",
        stats.latenciesNs as number[],
        (stats.latenciesNs as number[]).length,
      );
      add("kernel -> stdout line received", lineNs, lineNs.length);
    } finally {
      await agent.quit();
    }
  }
  // (c): a callback on loopback.
  {
    const callbackNs: number[] = [];
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        const received = monotonicClocks().realtimeNs;
        const body = await request.json() as { KiveAlert?: Record<string, unknown> };
        const t = body.KiveAlert?.["timestamp-ns"];
        if (typeof t === "string") callbackNs.push(Number(received - BigInt(t)));
        return new Response(null, { status: 204 });
      },
    );
    const agent = await AgentProcess.start({
      backend: bench.backend,
      args: bench.agentArgs(1000, [
        "--output",
        "callback",
        "--callback-url",
        `http://127.0.0.1:${server.addr.port}/ingest`,
      ]),
    });
    try {
      const a = agent.sample();
      await runJson(bench.bins.trap_hit, [
        trap,
        String(bench.profile.m3Hits),
        "1",
        String(bench.profile.m3IntervalUs),
      ]);
      const deadline = performance.now() + 15_000;
      while (callbackNs.length < bench.profile.m3Hits && performance.now() < deadline) {
        await sleep(20);
      }
      const b = agent.sample();
      cpu.push(cpuPercent(a, b));
      m5.underM3RssKiB = Math.max(m5.underM3RssKiB ?? 0, b.rssKiB);
      add("kernel -> callback POST received (loopback)", callbackNs, callbackNs.length);
    } finally {
      await agent.quit();
      await server.shutdown();
    }
  }
  m5.underM3CpuPercent = summarize(cpu);
  return result;
}

/** The M3 section of the report. */
export function renderM3(out: string[], r: Results): void {
  if (r.m3) {
    out.push("## M3 trap-hit latency, microseconds");
    out.push("");
    out.push(
      `${r.m3.hits} opens of a trap file, one every ${r.m3.intervalUs} us, agent with 1,000 traps. From the kernel's ` +
        "timestamp of the access (bpf_ktime_get_boot_ns, as wall clock) to each point.",
    );
    out.push("");
    out.push(table(
      ["path", "samples", "p50", "p99", "p99.9", "max"],
      r.m3.paths.map((
        p,
      ) => [
        p.path,
        `${p.samples}/${r.m3!.hits}`,
        fmt(p.p50Us),
        fmt(p.p99Us),
        fmt(p.p999Us),
        fmt(p.maxUs),
      ]),
    ));
    out.push("");
  }
}
