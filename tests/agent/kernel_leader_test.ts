/**
 * KernelLeader without BPF: a scripted engine stands in for the kernel (arms like the trap map,
 * refuses what the real one refuses, streams the events it is given), so leading, adoption,
 * sync verdicts and the last stop's unpin are checked on their own.
 */
import assert from "node:assert/strict";
import type { TrapEngine } from "../../src/engine/mod.ts";
import type { Alert } from "../../src/delivery/mod.ts";
import type { TrapRegistration } from "../../src/agent/alert.ts";
import { AlertRouter } from "../../src/agent/alert_router.ts";
import { KernelArms } from "../../src/agent/kernel_arms.ts";
import { KernelLeader } from "../../src/agent/kernel_leader.ts";
import { createLogger } from "../../src/agent/log.ts";
import { accessEvent, registration, ScriptedEngine } from "./_fixtures.ts";
import { type AgentMetrics, createAgentMetrics } from "../../src/delivery/mod.ts";

function leaderWith(engine: ScriptedEngine | Error, metrics?: AgentMetrics) {
  const lines: string[] = [];
  const log = createLogger("debug", (line) => lines.push(line));
  const alerts: Alert[] = [];
  const arms = new KernelArms();
  const router = new AlertRouter({
    kernelId: "k",
    log,
    output: { deliver: (alert) => alerts.push(alert) },
  }, arms);
  const leader = new KernelLeader({
    nodeName: "node-a",
    kernelId: "k",
    log,
    openEngine: () =>
      engine instanceof Error
        ? Promise.reject(engine)
        : Promise.resolve(engine as unknown as TrapEngine),
    alerts: router,
    arms,
    describe: (error) => String((error as Error).message ?? error),
    metrics,
  });
  return { leader, lines, alerts, arms };
}

Deno.test("KernelLeader arms live registrations; a refused inode and a block it cannot enforce are reported for status", async () => {
  const engine = new ScriptedEngine("tracepoint");
  engine.refuse.add("42:1002");
  const { leader, lines } = leaderWith(engine);
  assert.equal(await leader.start(), true);
  const good = registration("1001");
  const refused = registration("1002", { trapIndex: 1 });
  const block = registration("1003", { trapIndex: 2, action: "block" });
  leader.sync([good, refused, block]);
  assert.deepEqual([...engine.armedKeys.keys()].sort(), ["42:1001", "42:1003"]);
  assert.match(leader.armFailure(refused) ?? "", /E2BIG/);
  assert.equal(leader.armFailure(good), undefined);
  const problems = leader.blockProblems([
    { target: targetOf(block), registration: block },
    { target: targetOf(good), registration: good },
  ]);
  assert.deepEqual(problems.map((p) => p.reason), ["BlockNotEnforced"]);
  assert.ok(lines.some((l) => l.includes("cannot arm trap in the kernel")));
  await leader.stop(false);
  assert.equal(engine.unpinned, false);
  assert.equal(leader.armFailure(refused), undefined, "a follower has no kernel verdicts");
});

Deno.test("KernelLeader adopts pinned traps and routes the events held until its first sync", async () => {
  const engine = new ScriptedEngine("tracepoint");
  engine.pins = { root: "/pins", mapsDir: "/pins/maps-1", adoptedMaps: true, adoptedLinks: true };
  engine.armedKeys.set("42:1001", { key: { dev: 42, ino: 1001n }, trapId: 5, block: false });
  // An access made while no agent ran waits in the adopted ring.
  engine.push(accessEvent(5, 1001n));
  const { leader, alerts, arms } = leaderWith(engine);
  await leader.start();
  assert.equal(arms.armedInodes, 1);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(alerts.length, 0, "held until the registrations are known");
  leader.sync([registration("1001")]);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(alerts.length, 1);
  assert.equal(engine.armedKeys.get("42:1001")?.trapId, 5, "the adopted trap id is kept");
  await leader.stop(false);
});

Deno.test("KernelLeader's last stop with nothing armed unpins; with traps armed it leaves them", async () => {
  const empty = new ScriptedEngine();
  empty.pins = { root: "/pins", mapsDir: "/pins/m", adoptedMaps: false, adoptedLinks: false };
  const first = leaderWith(empty);
  await first.leader.start();
  first.leader.sync([]);
  await first.leader.stop(true);
  assert.equal(empty.unpinned, true);

  const busy = new ScriptedEngine();
  busy.pins = { root: "/pins", mapsDir: "/pins/m", adoptedMaps: false, adoptedLinks: false };
  const second = leaderWith(busy);
  await second.leader.start();
  second.leader.sync([registration("1001")]);
  await second.leader.stop(true);
  assert.equal(busy.unpinned, false, "armed traps stay for the next agent");
});

Deno.test("KernelLeader.start() reports an engine that cannot load, naming the error", async () => {
  const { leader, lines } = leaderWith(new Error("BPF_PROG_LOAD: EPERM"));
  assert.equal(await leader.start(), false);
  assert.equal(leader.engine, undefined);
  assert.ok(lines.some((l) => l.includes("cannot load BPF programs") && l.includes("EPERM")));
});

function targetOf(r: TrapRegistration) {
  return {
    key: `${r.policy.uid}/${r.trapIndex}`,
    policy: { ...r.policy, generation: 1 },
    alertVersion: r.alertVersion,
    trapIndex: r.trapIndex,
    trap: { path: r.path, action: r.action } as never,
    pod: r.pod,
    container: r.container,
  };
}

Deno.test("KernelLeader starts each armed policy's alert counters at 0, so the first access is an increase", async () => {
  const metrics = createAgentMetrics();
  const { leader } = leaderWith(new ScriptedEngine("tracepoint"), metrics);
  assert.equal(await leader.start(), true);
  const policy = registration("1001").policy;
  const labels = (sink: string) => ({ policy: policy.name, namespace: policy.namespace, sink });
  assert.equal(metrics.alerts.get(labels("stdout")), undefined);
  leader.sync([registration("1001")]);
  assert.equal(metrics.alerts.get(labels("stdout")), 0);
  assert.equal(metrics.alerts.get(labels("callback")), 0);
  metrics.alerts.inc(labels("stdout"));
  leader.sync([registration("1001")]);
  assert.equal(metrics.alerts.get(labels("stdout")), 1, "a later sync adds nothing");
  await leader.stop(false);
});
