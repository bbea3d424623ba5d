/**
 * A real Prometheus (Debian's, from scripts/fetch_prometheus.sh) scraping a running agent with
 * the shipped rules: an access to a trap shows up in kivebpf_alerts_total and fires
 * KivebpfTrapAccessed.
 */
import assert from "node:assert/strict";
import { freePort } from "../_support/kube.ts";
import { AgentProcess, waitFor } from "./_cluster.ts";
import { applyPolicy, appPod, deletePolicy, nodeStatus, withFixture } from "./_fixture.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Starts Prometheus scraping `target` every second with the shipped rules. */
async function startPrometheus(
  fixture: { cleanups: (() => Promise<unknown>)[] },
  target: string,
): Promise<(path: string) => Promise<{ data: unknown }>> {
  const dir = await Deno.makeTempDir({ prefix: "kivebpf-prometheus-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    JSON.stringify({
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      rule_files: [`${ROOT}manifests/prometheus/kivebpf-rules.yaml`],
      scrape_configs: [{ job_name: "kivebpf-agent", static_configs: [{ targets: [target] }] }],
    }),
  );
  const child = new Deno.Command(`${ROOT}.cache/prometheus/bin/prometheus`, {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const logs: string[] = [];
  const pump = (async () => {
    for (let r = await log.read(); !r.done; r = await log.read()) logs.push(r.value);
  })();
  fixture.cleanups.push(async () => {
    child.kill("SIGTERM");
    await child.status;
    await pump;
    await Deno.remove(dir, { recursive: true });
  });
  const api = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    const body = await response.json();
    assert.equal(body.status, "success", `${path}: ${JSON.stringify(body)} ${logs.join("")}`);
    return body;
  };
  await waitFor("Prometheus to answer", async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/-/ready`)).status === 200;
    } catch {
      return false;
    }
  }, 60);
  return api;
}

/** The value of a query that returns one sample, or undefined while it returns none. */
async function scalar(
  api: (path: string) => Promise<{ data: unknown }>,
  query: string,
): Promise<number | undefined> {
  const { data } = await api(`/api/v1/query?query=${encodeURIComponent(query)}`);
  const result = (data as { result: { value: [number, string] }[] }).result;
  return result.length > 0 ? Number(result[0].value[1]) : undefined;
}

Deno.test("a real Prometheus scrapes the agent: an access raises kivebpf_alerts_total and fires KivebpfTrapAccessed", async () => {
  await withFixture(async (fixture) => {
    const container = await appPod(fixture, "prom-pod");
    const metricsPort = freePort();
    const agent = new AgentProcess("node-a", ["--metrics-port", `${metricsPort}`]);
    fixture.agents.push(agent);
    await applyPolicy("prom-policy", {
      traps: [{ path: "/prom.txt", create: true, matchAny: [{ pod: "prom-pod" }] }],
    });
    fixture.cleanups.push(() => deletePolicy("prom-policy"));
    await waitFor(
      "the trap armed",
      async () => (await nodeStatus("prom-policy", "node-a"))?.armed === 1,
    );
    const api = await startPrometheus(fixture, `127.0.0.1:${metricsPort}`);
    await waitFor(
      "the agent's target up",
      async () => (await scalar(api, 'up{job="kivebpf-agent"}')) === 1,
      60,
    );
    assert.equal(await scalar(api, "max(kivebpf_leader)"), 1, "the agent leads its kernel");

    await container.execOk(["cat", "/prom.txt"]);
    const counted = await waitFor("the access in kivebpf_alerts_total", async () => {
      const value = await scalar(api, 'sum(kivebpf_alerts_total{policy="prom-policy"})');
      return value !== undefined && value >= 1 ? value : undefined;
    }, 60);
    assert.equal(counted, 1);
    const firing = await waitFor("KivebpfTrapAccessed firing", async () => {
      const { data } = await api("/api/v1/alerts");
      const alerts = (data as { alerts: { labels: Record<string, string>; state: string }[] })
        .alerts;
      return alerts.find((a) =>
        a.labels.alertname === "KivebpfTrapAccessed" && a.state === "firing"
      );
    }, 60);
    assert.equal(firing.labels.policy, "prom-policy");
    assert.equal(firing.labels.severity, "critical");
    const { data } = await api("/api/v1/alerts");
    const names = (data as { alerts: { labels: { alertname: string } }[] }).alerts.map((a) =>
      a.labels.alertname
    );
    assert.ok(!names.includes("KivebpfNoKernelLeader"), `${names}`);
    assert.ok(!names.includes("KivebpfAgentDown"), `${names}`);
  });
});
