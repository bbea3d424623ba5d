/**
 * Registration ConfigMaps against a real API server: user text the YAML reader of server-side
 * apply refuses (DEL, C1 controls) goes through intact, one chunk the server refuses (an entry
 * too big for a ConfigMap) leaves the node's other registrations published, and a node alone on
 * its kernel withdraws them all.
 */
import assert from "node:assert/strict";
import { CoreV1Api } from "@kubernetes/client-node";
import type { TrapRegistration } from "../../src/agent/alert.ts";
import { createLogger } from "../../src/agent/log.ts";
import {
  KERNEL_LABEL,
  kernelShared,
  peerRegistrations,
  RegistrationPublisher,
} from "../../src/agent/registrations.ts";
import { apiStatus, loadKubeConfig } from "../../src/kube/mod.ts";

const NS = "registrations-test";

function registration(index: number, extra: Partial<TrapRegistration> = {}): TrapRegistration {
  return {
    dev: 42,
    ino: `${5000 + index}`,
    policy: { namespace: "default", name: "p", uid: "policy-uid" },
    trapIndex: 0,
    path: `/trap-${index}.txt`,
    alertVersion: "v1",
    metadata: {},
    action: "alert",
    pod: { namespace: "default", name: `pod-${index}`, uid: `uid-${index}` },
    container: { name: "app", id: `containerd://${index}` },
    node: "node-a",
    ...extra,
  };
}

async function setup(kernelId: string) {
  const core = loadKubeConfig(Deno.env.get("KUBECONFIG")).makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } }).catch((error) => {
    if (apiStatus(error) !== 409) throw error;
  });
  const lines: string[] = [];
  const log = createLogger("info", (line) => lines.push(line));
  const publisher = new RegistrationPublisher({
    core,
    nodeName: "node-a",
    namespace: NS,
    kernelId,
    log,
    describe: (error) => String(error),
  });
  const readBack = async () => {
    const list = await core.listNamespacedConfigMap({
      namespace: NS,
      labelSelector: `${KERNEL_LABEL}=${kernelId}`,
    });
    return peerRegistrations(list.items, "node-b", log);
  };
  const cleanup = () =>
    core.deleteCollectionNamespacedConfigMap({
      namespace: NS,
      labelSelector: `${KERNEL_LABEL}=${kernelId}`,
    });
  return { publisher, readBack, lines, cleanup };
}

Deno.test("a trap path and metadata with DEL and C1 controls are published and read back exactly", async () => {
  const { publisher, readBack, lines, cleanup } = await setup(`k-ctl-${Date.now()}`);
  try {
    const odd = registration(1, {
      path: "/odd\u007fname\u0085\u009f.txt",
      metadata: { note: "bell\u0007 del\u007f nel\u0085 ls\u2028 ps\u2029 \ufffe end" },
    });
    await publisher.publish([odd, registration(2)]);
    assert.deepEqual(lines.filter((line) => line.includes("WARN")), []);
    assert.deepEqual(await readBack(), [odd, registration(2)]);
  } finally {
    await cleanup();
  }
});

Deno.test("a chunk the API server refuses does not keep the other chunks from being published", async () => {
  const { publisher, readBack, lines, cleanup } = await setup(`k-big-${Date.now()}`);
  try {
    // 1.2 MB of metadata (admission now refuses it; an old object or a bug could still carry it).
    const huge = registration(2, { metadata: { blob: "x".repeat(1_200_000) } });
    await publisher.publish([registration(1), huge, registration(3), registration(4)]);
    const warnings = lines.filter((line) => line.includes("cannot publish trap registrations"));
    assert.equal(warnings.length, 1, lines.join("\n"));
    assert.ok(warnings[0].includes("kivebpf-node-node-a-1"), warnings[0]);
    const published = (await readBack()).map((r) => r.ino).sort();
    assert.deepEqual(published, ["5001", "5003", "5004"]);
  } finally {
    await cleanup();
  }
});

Deno.test("withdraw() removes every chunk; kernelShared() sees only other nodes' ConfigMaps", async () => {
  const kernelId = `k-alone-${Date.now()}`;
  const { publisher, readBack, cleanup } = await setup(kernelId);
  const core = loadKubeConfig(Deno.env.get("KUBECONFIG")).makeApiClient(CoreV1Api);
  const list = async () =>
    (await core.listNamespacedConfigMap({
      namespace: NS,
      labelSelector: `${KERNEL_LABEL}=${kernelId}`,
    })).items;
  try {
    // Two chunks (0.9 MB each at most), then withdrawn: nothing of this node is left.
    const big = (i: number) => registration(i, { metadata: { blob: "y".repeat(600_000) } });
    await publisher.publish([big(1), big(2)]);
    assert.equal((await list()).length, 2);
    assert.ok(!kernelShared(await list(), "node-a"), "its own ConfigMaps do not make it shared");
    assert.ok(kernelShared(await list(), "node-b"), "node-b sees node-a on its kernel");
    await publisher.withdraw();
    assert.deepEqual(await list(), []);
    assert.deepEqual(await readBack(), []);
    await publisher.withdraw(); // once withdrawn, nothing more is sent
    await publisher.publish([registration(3)]);
    assert.deepEqual((await readBack()).map((r) => r.ino), ["5003"], "published again when asked");
  } finally {
    await cleanup();
  }
});
