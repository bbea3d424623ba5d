/**
 * The blind-window scenarios: one access every 100 ms from inside a container while the
 * control plane or the agents fail, and the tally of what became of each access (delivered on
 * time or late, counted lost, unaccounted). Shared by tests/integration/chaos_test.ts, which
 * asserts that nothing is unaccounted, and the benchmark's BW phase, which reports the figures
 * (docs/PERFORMANCE.md, "Blind windows").
 *
 * Importing it installs the API (see _fixture.ts): set KUBECONFIG first.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import type { RuncContainer } from "../containers/_runc.ts";
import { AgentProcess, waitFor } from "../integration/_cluster.ts";
import {
  applyPolicy,
  createFixturePod,
  deletePolicy,
  nodeStatus,
  startContainer,
  withFixture,
} from "../integration/_fixture.ts";

const ACCESSES = 300; // 30 s at one every 100 ms
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs scripts/apiserver.sh on the test API server (its directory holds $KUBECONFIG). */
export async function apiserver(command: "stop-apiserver" | "start-apiserver"): Promise<void> {
  const dir = dirname(Deno.env.get("KUBECONFIG") ?? "");
  const script = new URL("../../scripts/apiserver.sh", import.meta.url).pathname;
  const { code, stderr } = await new Deno.Command("bash", { args: [script, command, dir] })
    .output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}

/** An alert that arrives this much after its access (second-precision timestamps) is late. */
const LATE_MS = 2000;

/**
 * Accesses of one policy's trap as the agents reported them: alerts (on time, late, and the
 * largest delay) and counted losses.
 */
function tally(agents: AgentProcess[], policy: string) {
  let delivered = 0;
  let late = 0;
  let maxDelayMs = 0;
  let lost = 0;
  for (const { alert, at } of agents.flatMap((a) => a.timedAlerts())) {
    if (alert["kive-policy-name"] !== policy) continue;
    const count = alert["lost-accesses"];
    if (typeof count === "number") {
      lost += count;
      continue;
    }
    delivered++;
    const delay = at - Date.parse(String(alert.timestamp));
    maxDelayMs = Math.max(maxDelayMs, delay);
    if (delay > LATE_MS) late++;
  }
  return { delivered, late, maxDelayMs, lost };
}

/** One `cat` of the trap every 100 ms, `count` times; resolves when the loop ended. */
function steadyAccesses(container: RuncContainer, path: string, count: number): Promise<string> {
  return container.execOk([
    "sh",
    "-c",
    `i=0; while [ $i -lt ${count} ]; do cat ${path} >/dev/null; i=$((i+1)); sleep 0.1; done`,
  ]);
}

/**
 * A container with a pod on `node` and an armed trap at `path` of a new policy named after
 * `prefix` (unique per run: a policy left over from a failed run may still be terminating).
 */
async function armedTrap(
  fixture: Parameters<Parameters<typeof withFixture>[0]>[0],
  leader: AgentProcess,
  prefix: string,
  path: string,
): Promise<{ container: RuncContainer; policy: string }> {
  const node = leader.node;
  const policy = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
  const container = await startContainer(fixture);
  await createFixturePod(fixture, {
    name: policy,
    namespace: "default",
    node,
    labels: { app: policy },
    containerName: "app",
    container,
  });
  await applyPolicy(policy, {
    traps: [{ path, create: true, matchAny: [{ matchLabels: { app: policy } }] }],
  });
  fixture.cleanups.push(() => deletePolicy(policy));
  await waitFor(`${policy} armed`, async () => (await nodeStatus(policy, node))?.armed === 1);
  // Status says planted; the kernel has it once the leader synced (an earlier test's dead
  // leader may hold the kernel's Lease for another lease duration).
  await waitFor(
    `the leader to arm ${policy} in the kernel`,
    () => leader.leading() && leader.stderrLines.some((l) => l.includes("kernel traps updated")),
  );
  return { container, policy };
}

/** What became of the accesses of one scenario run. */
export interface ScenarioTally {
  scenario: string;
  made: number;
  delivered: number;
  late: number;
  maxDelayMs: number;
  lost: number;
  unaccounted: number;
}

/** Waits until made = delivered + lost (or 90 s), then a little longer to see duplicates. */
async function account(
  scenario: string,
  agents: AgentProcess[],
  policy: string,
  made: number,
): Promise<ScenarioTally> {
  await waitFor(
    `${made} accesses delivered or counted`,
    () => {
      const { delivered, lost } = tally(agents, policy);
      return delivered + lost >= made;
    },
    90,
  ).catch(() => {
    console.error(agents.map((a) => a.log()).join("\n"));
  });
  await sleep(2000);
  const t = tally(agents, policy);
  const result = { scenario, made, ...t, unaccounted: made - t.delivered - t.lost };
  console.error(
    `${policy}: made ${made}, delivered ${t.delivered} (${t.late} late, longest ${
      (t.maxDelayMs / 1000).toFixed(1)
    } s), counted lost ${t.lost}, unaccounted ${result.unaccounted}`,
  );
  return result;
}

/** (d) The API server down for 30 s under steady accesses; the agent must keep leading. */
export function outage(): Promise<ScenarioTally> {
  return withTally(async (fixture) => {
    const agent = new AgentProcess("node-outage");
    fixture.agents.push(agent);
    const { container, policy } = await armedTrap(fixture, agent, "outage", "/outage.txt");
    await container.execOk(["cat", "/outage.txt"]);
    await waitFor("the first alert", () => tally([agent], policy).delivered >= 1);

    const accesses = steadyAccesses(container, "/outage.txt", ACCESSES);
    await sleep(2000);
    await apiserver("stop-apiserver");
    try {
      await sleep(30_000);
      assert.ok(agent.leading(), "the agent still leads its kernel after 30 s without the API");
    } finally {
      await apiserver("start-apiserver");
    }
    await accesses;
    return account("outage", [agent], policy, ACCESSES + 1);
  });
}

/** Runs `body` in a fixture and hands back its tally. */
async function withTally(
  body: (fixture: Parameters<Parameters<typeof withFixture>[0]>[0]) => Promise<ScenarioTally>,
): Promise<ScenarioTally> {
  let result: ScenarioTally | undefined;
  await withFixture(async (fixture) => {
    result = await body(fixture);
  });
  return result!;
}

/**
 * One agent leads; `fault` hits it 2 s into 30 s of steady accesses; the agents `fault`
 * returns must together account for every access.
 */
function underSteadyAccesses(
  prefix: string,
  fault: (leader: AgentProcess) => Promise<AgentProcess[]>,
): Promise<ScenarioTally> {
  return withTally(async (fixture) => {
    const node = `node-${prefix}`;
    const leader = new AgentProcess(node);
    fixture.agents.push(leader);
    const { container, policy } = await armedTrap(fixture, leader, prefix, `/${prefix}.txt`);
    await container.execOk(["cat", `/${prefix}.txt`]);
    await waitFor("the first alert", () => tally([leader], policy).delivered >= 1);
    const accesses = steadyAccesses(container, `/${prefix}.txt`, ACCESSES);
    await sleep(2000);
    const others = await fault(leader);
    fixture.agents.push(...others);
    await accesses;
    return account(prefix, [leader, ...others], policy, ACCESSES + 1);
  });
}

/** (b) The only agent SIGKILLed and restarted 3 s later. */
export function restart(): Promise<ScenarioTally> {
  return underSteadyAccesses("restart", async (leader) => {
    await leader.stop("SIGKILL");
    await sleep(3000);
    const next = new AgentProcess(leader.node);
    await waitFor("the restarted agent to lead", () => next.leading(), 30);
    assert.ok(next.stderrLines.some((l) => l.includes("adopted the pinned traps")), next.log());
    return [next];
  });
}

/** (c) An upgrade: SIGTERM, a new agent at once. */
export function upgrade(): Promise<ScenarioTally> {
  return underSteadyAccesses("upgrade", async (leader) => {
    await leader.stop("SIGTERM");
    const next = new AgentProcess(leader.node);
    await waitFor("the new agent to lead", () => next.leading(), 30);
    assert.ok(next.stderrLines.some((l) => l.includes("adopted the pinned traps")), next.log());
    return [next];
  });
}

/** (a) The leader SIGKILLed with a second agent on the kernel waiting. */
export function takeover(): Promise<ScenarioTally> {
  return underSteadyAccesses("takeover", async (leader) => {
    const follower = new AgentProcess(`${leader.node}-b`);
    await waitFor("the follower to run", () => follower.stderrLines.length > 0, 30);
    await sleep(2000);
    assert.equal(follower.leading(), false);
    await leader.stop("SIGKILL");
    await waitFor("the follower to take over", () => follower.leading(), 45);
    assert.ok(
      follower.stderrLines.some((l) => l.includes("adopted the pinned traps")),
      follower.log(),
    );
    return [follower];
  });
}

/** The four scenarios by name, in the order of the issue: (a) to (d). */
export const SCENARIOS = { takeover, restart, upgrade, outage } as const;
