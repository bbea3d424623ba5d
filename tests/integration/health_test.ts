/**
 * The agent's probes as the kubelet sees them: `/readyz` only once its watches listed and its
 * kernel has a known leader, with the reasons while not; `/healthz` passing while the agent
 * waits for an unreachable API server (a restart would not help), and the probe metric.
 */
import assert from "node:assert/strict";
import { parse, stringify } from "yaml";
import { freePort } from "../_support/kube.ts";
import { Cable } from "../_support/cable.ts";
import { AgentProcess, waitFor } from "./_cluster.ts";
import { withFixture } from "./_fixture.ts";

async function probe(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}

Deno.test("/readyz turns 200 once the agent synced and leads; /healthz and the metric agree", async () => {
  await withFixture(async (fixture) => {
    const port = freePort();
    const agent = new AgentProcess("node-a", ["--metrics-port", `${port}`]);
    fixture.agents.push(agent);
    await waitFor("ready", async () => (await probe(port, "/readyz")).status === 200, 60);
    // Ready means a leader is known; this agent, alone on its kernel, becomes it.
    await waitFor("leading", () => agent.leading(), 30);
    assert.deepEqual(await probe(port, "/healthz"), { status: 200, body: "ok\n" });
    await waitFor("the probe metric", async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return text.includes('kivebpf_probe_ok{probe="ready"} 1') &&
        text.includes('kivebpf_probe_ok{probe="live"} 1');
    }, 20);
  });
});

Deno.test("an agent that cannot reach the API server is not ready, says why, and stays live", async () => {
  await withFixture(async (fixture) => {
    const server = new URL(
      parse(await Deno.readTextFile(Deno.env.get("KUBECONFIG")!))
        .clusters[0].cluster.server,
    );
    await using cable = new Cable(server);
    cable.cut();
    const config = parse(await Deno.readTextFile(Deno.env.get("KUBECONFIG")!));
    config.clusters[0].cluster.server = `https://127.0.0.1:${cable.port}`;
    const path = await Deno.makeTempFile({ suffix: ".kubeconfig" });
    fixture.cleanups.push(() => Deno.remove(path));
    await Deno.writeTextFile(path, stringify(config));
    const port = freePort();
    const agent = new AgentProcess("node-a", ["--metrics-port", `${port}`, "--kubeconfig", path]);
    fixture.agents.push(agent);
    const notReady = await waitFor("a probe answer", async () => {
      const answer = await probe(port, "/readyz");
      return answer.status === 503 ? answer : undefined;
    }, 60);
    assert.match(notReady.body, /watch kivepolicies has not listed yet/);
    assert.match(notReady.body, /no known leader for this node's kernel/);
    assert.deepEqual(await probe(port, "/healthz"), { status: 200, body: "ok\n" });
    // Back: the same agent becomes ready without a restart.
    cable.restore();
    await waitFor(
      "ready after the API server is back",
      async () => (await probe(port, "/readyz")).status === 200,
      60,
    );
  });
});
