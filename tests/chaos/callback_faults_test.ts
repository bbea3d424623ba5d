/**
 * Callback endpoints that fail in every way, through the real agent: one answers 500, one
 * hangs, one is slow, one refuses connections and one has a certificate nobody trusts, each on
 * its own trap of one pod, with a healthy endpoint beside them. The healthy endpoint gets every
 * alert before any failing one has even timed out, and for every trap the accesses made equal
 * the alerts its endpoint accepted plus the alerts that went to stdout with the error.
 */
import assert from "node:assert/strict";
import { makeTestTls } from "../_support/tls.ts";
import { closedPort, recordingServer } from "../delivery/_support.ts";
import { AgentProcess, waitFor } from "../integration/_cluster.ts";
import { applyPolicy, appPod, deletePolicy, withFixture } from "../integration/_fixture.ts";

const ACCESSES = 5;

Deno.test("a 500, a hanging, a slow, a refusing and a bad-TLS callback neither delay a healthy one nor lose an alert", async () => {
  await withFixture(async (fixture) => {
    const tls = await makeTestTls();
    let release = () => {};
    const hung = new Promise<void>((resolve) => (release = resolve));
    const servers = {
      healthy: recordingServer(),
      failing: recordingServer(() => new Response("down", { status: 500 })),
      hanging: recordingServer(async () => {
        await hung;
        return new Response("too late");
      }),
      slow: recordingServer(async () => {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        return new Response("ok");
      }),
      untrusted: recordingServer(undefined, { cert: tls.cert, key: tls.key }),
    };
    fixture.cleanups.push(async () => {
      release();
      await Promise.all(Object.values(servers).map((s) => s.close()));
    });
    const urls: Record<string, string> = {
      ...Object.fromEntries(Object.entries(servers).map(([name, s]) => [name, `${s.base}/in`])),
      refused: `http://127.0.0.1:${closedPort()}/in`,
    };
    const container = await appPod(fixture, "cb-faults-pod");
    // Short request timeout and retry budget, so that every fault ends within the test.
    const agent = new AgentProcess("node-a", [
      "--callback-timeout-seconds",
      "3",
      "--callback-retry-seconds",
      "10",
    ]);
    fixture.agents.push(agent);
    const policy = `cb-faults-${crypto.randomUUID().slice(0, 8)}`;
    await applyPolicy(policy, {
      traps: Object.entries(urls).map(([name, url]) => ({
        path: `/${name}.txt`,
        create: true,
        callback: url,
        matchAny: [{ pod: "cb-faults-pod" }],
      })),
    });
    fixture.cleanups.push(() => deletePolicy(policy));
    await waitFor(
      "the leader to arm the traps",
      () =>
        agent.leading() &&
        agent.stderrLines.some((l) =>
          l.includes("kernel traps updated") && l.includes('"inodes":6')
        ),
      90,
    );
    for (let i = 0; i < ACCESSES; i++) {
      for (const name of Object.keys(urls)) await container.execOk(["cat", `/${name}.txt`]);
    }
    await servers.healthy.waitFor(ACCESSES);
    const healthyDone = Date.now();
    // Requests answered 2xx, once per alert id (a retried alert counts once).
    const answered = new Set(["healthy", "slow"]);
    const accepted = (name: string) =>
      answered.has(name)
        ? new Set(servers[name as keyof typeof servers].received.map((r) => r.id)).size
        : 0;
    const fallbacks = (name: string) =>
      stdoutAlerts(agent).filter((a) => a.path === `/${name}.txt` && a.error !== undefined);
    await waitFor(
      "every alert delivered or on stdout with its error",
      () => Object.keys(urls).every((name) => accepted(name) + fallbacks(name).length >= ACCESSES),
      90,
    );
    const firstHangFallback = Math.min(...fallbacks("hanging").map((a) => a.at));
    assert.ok(
      healthyDone < firstHangFallback,
      "the healthy endpoint had all its alerts before the hanging one's first timeout",
    );
    for (const name of Object.keys(urls)) {
      assert.equal(
        accepted(name) + fallbacks(name).length,
        ACCESSES,
        `${name}: made = delivered + on stdout`,
      );
    }
    assert.equal(accepted("healthy"), ACCESSES);
    assert.equal(accepted("slow"), ACCESSES, "a slow endpoint within the timeout gets them all");
    for (const name of ["failing", "hanging", "refused", "untrusted"]) {
      assert.equal(fallbacks(name).length, ACCESSES, `${name}: every alert on stdout`);
    }
    assert.match(fallbacks("untrusted")[0].error!, /certificate|tls|TLS|UnknownIssuer/i);
    assert.match(fallbacks("failing")[0].error!, /500/);
  });
});

/** The agent's stdout alerts with the trap path, the delivery error and when each arrived. */
function stdoutAlerts(agent: AgentProcess): { path: string; error?: string; at: number }[] {
  return agent.stdoutLines.flatMap((line, i) => {
    try {
      const parsed = JSON.parse(line);
      if (!parsed.KiveAlert) return [];
      return [{
        path: parsed.KiveAlert.metadata?.path,
        error: parsed.error,
        at: agent.stdoutAt[i],
      }];
    } catch {
      return [];
    }
  });
}
