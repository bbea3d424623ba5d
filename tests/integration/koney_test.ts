/**
 * Koney (dynatrace-oss/koney) as a client: it writes v1 KivePolicies in its own namespace for
 * the honeytokens it planted itself (no `create`), with its policy's name in the trap metadata,
 * and reads the alerts POSTed to its alert forwarder. This test writes a policy of that shape
 * and checks the POSTed alert carries every field Koney's forwarder reads.
 */
import assert from "node:assert/strict";
import { GROUP } from "../../src/api/mod.ts";
import { kubectl } from "../_support/kube.ts";
import { AgentProcess, ensureNamespace, waitFor } from "./_cluster.ts";
import { createFixturePod, kube, startContainer, startReceiver, withFixture } from "./_fixture.ts";

const KONEY_NS = "koney-system";

/** The fields Koney's alert forwarder reads from a KiveAlert (its `kive.py`). */
const KONEY_READS = [
  ["timestamp"],
  ["custom-metadata", "koney-deception-policy-name"],
  ["metadata", "path"],
  ["pod", "name"],
  ["pod", "namespace"],
  ["pod", "container", "id"],
  ["pod", "container", "name"],
  ["node", "name"],
  ["process", "uid"],
  ["process", "pid"],
  ["process", "cwd"],
  ["process", "binary"],
  ["process", "arguments"],
];

Deno.test("a policy in Koney's shape alerts Koney's forwarder with every field it reads", async () => {
  await withFixture(async (fixture) => {
    const { received, url } = startReceiver(fixture);
    await ensureNamespace(kube, KONEY_NS);
    const container = await startContainer(fixture);
    // Koney plants the honeytoken itself (its containerExec strategy), then asks for a captor.
    await container.execOk([
      "sh",
      "-c",
      'mkdir -p /tmp && echo \'{"token": "someverysecrettoken"}\' > /tmp/auth_token.json',
    ]);
    await createFixturePod(fixture, {
      name: "koney-demo",
      namespace: "default",
      node: "node-a",
      labels: { "demo.koney/honeytoken": "true" },
      containerName: "nginx",
      container,
    });
    const agent = new AgentProcess("node-a");
    fixture.agents.push(agent);
    const policy = {
      apiVersion: `${GROUP}/v1`,
      kind: "KivePolicy",
      metadata: {
        name: "koney-test-deceptionpolicy-0a1b2c3d",
        namespace: KONEY_NS,
        labels: { "koney/deception-policy": "koney-test-deceptionpolicy" },
      },
      spec: {
        traps: [{
          path: "/tmp/auth_token.json",
          callback: url("/handlers/kive"),
          metadata: { "koney-deception-policy-name": "koney-test-deceptionpolicy" },
          matchAny: [
            {
              namespace: "default",
              containerName: "nginx",
              matchLabels: { "demo.koney/honeytoken": "true" },
            },
            { namespace: "staging", containerName: "nginx" },
          ],
        }],
      },
    };
    const applied = await kubectl(["apply", "-f", "-"], JSON.stringify(policy));
    assert.equal(applied.code, 0, applied.stderr);
    fixture.cleanups.push(() =>
      kube.request(
        "DELETE",
        `/apis/${GROUP}/v1/namespaces/${KONEY_NS}/kivepolicies/${policy.metadata.name}`,
      )
    );
    const before = await container.execOk(["cat", "/tmp/auth_token.json"]);
    assert.equal(before, '{"token": "someverysecrettoken"}\n', "Koney's file is left as it is");
    const { path, body } = await waitFor("the alert at Koney's forwarder", async () => {
      await container.execOk(["cat", "/tmp/auth_token.json"]);
      await new Promise((resolve) => setTimeout(resolve, 500));
      return received[0];
    }, 60);
    assert.equal(path, "/handlers/kive");
    const alert = body.KiveAlert;
    for (const keys of KONEY_READS) {
      const value = keys.reduce<unknown>(
        (at, key) => (at as Record<string, unknown> | undefined)?.[key],
        alert,
      );
      assert.notEqual(value, undefined, `Koney reads ${keys.join(".")}`);
    }
    assert.deepEqual(alert["custom-metadata"], {
      "koney-deception-policy-name": "koney-test-deceptionpolicy",
    });
    assert.equal(alert["kive-alert-version"], "v1");
    assert.equal((alert.metadata as { path: string }).path, "/tmp/auth_token.json");
    const pod = alert.pod as {
      name: string;
      namespace: string;
      container: { id: string; name: string };
    };
    assert.deepEqual([pod.name, pod.namespace, pod.container.name], [
      "koney-demo",
      "default",
      "nginx",
    ]);
    assert.match(pod.container.id, /^containerd:\/\/[0-9a-f]+$/);
    const process = alert.process as Record<string, unknown>;
    assert.equal(process.binary, "cat");
    assert.equal(process.arguments, "/tmp/auth_token.json");
    assert.equal(typeof process.uid, "number");
    assert.equal(typeof process.pid, "number");
    assert.match(alert.timestamp as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(await container.execOk(["cat", "/tmp/auth_token.json"]), before);
  });
});
