/**
 * Faults under steady accesses: one access every 100 ms from inside a container while the
 * control plane or the agents fail. Every access must be delivered (on time or late) or
 * counted lost; none may go unaccounted. The figures go to docs/PERFORMANCE.md.
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import type { RuncContainer } from "../containers/_runc.ts";
import { AgentProcess, waitFor } from "./_cluster.ts";
import {
  applyPolicy,
  createFixturePod,
  deletePolicy,
  nodeStatus,
  startContainer,
  withFixture,
} from "./_fixture.ts";

const ACCESSES = 300; // 30 s at one every 100 ms
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs scripts/apiserver.sh on the test API server (its directory holds $KUBECONFIG). */
async function apiserver(command: "stop-apiserver" | "start-apiserver"): Promise<void> {
  const dir = dirname(Deno.env.get("KUBECONFIG") ?? "");
  const script = new URL("../../scripts/apiserver.sh", import.meta.url).pathname;
  const { code, stderr } = await new Deno.Command("bash", { args: [script, command, dir] })
    .output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}

/** Accesses of one policy's trap as the agents reported them: alerts and counted losses. */
function tally(agents: AgentProcess[], policy: string): { delivered: number; lost: number } {
  let delivered = 0;
  let lost = 0;
  for (const alert of agents.flatMap((a) => a.alerts())) {
    if (alert["kive-policy-name"] !== policy) continue;
    const count = alert["lost-accesses"];
    if (typeof count === "number") lost += count;
    else delivered++;
  }
  return { delivered, lost };
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
  prefix: string,
  node: string,
  path: string,
): Promise<{ container: RuncContainer; policy: string }> {
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
  return { container, policy };
}

/** Waits until made = delivered + lost, then a little longer to see duplicates. */
async function assertAccounted(agents: AgentProcess[], policy: string, made: number) {
  await waitFor(
    `${made} accesses delivered or counted`,
    () => {
      const { delivered, lost } = tally(agents, policy);
      return delivered + lost >= made;
    },
    90,
  ).catch((error) => {
    const { delivered, lost } = tally(agents, policy);
    throw new Error(
      `made ${made}, delivered ${delivered}, counted lost ${lost}: ${
        made - delivered - lost
      } unaccounted\n${agents.map((a) => a.log()).join("\n")}`,
      { cause: error },
    );
  });
  await sleep(2000);
  const { delivered, lost } = tally(agents, policy);
  console.log(`${policy}: made ${made}, delivered ${delivered}, counted lost ${lost}`);
  assert.equal(delivered + lost, made, "exactly: nothing unaccounted, nothing twice");
}

Deno.test("the API server down for 30 s under steady accesses: every access delivered or counted", async () => {
  await withFixture(async (fixture) => {
    const agent = new AgentProcess("node-outage");
    fixture.agents.push(agent);
    const { container, policy } = await armedTrap(fixture, "outage", "node-outage", "/outage.txt");
    await container.execOk(["cat", "/outage.txt"]);
    await waitFor("the first alert", () => tally([agent], policy).delivered === 1);

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
    await assertAccounted([agent], policy, ACCESSES + 1);
  });
});
