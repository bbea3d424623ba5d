/**
 * The reconcile driver (NodeAgent) without BPF or an API server: scripted watch caches, a
 * recording API, a scripted planter and engine. Checks what one pass does in order (plant,
 * hand over, arm, report, totals) and that a stage that throws stops nothing else.
 */
import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { NodeAgent } from "../../src/agent/agent.ts";
import { nodeReportName } from "../../src/api/mod.ts";
import type { PlantResult, TrapPlanter } from "../../src/agent/agent_options.ts";
import type { TrapTarget } from "../../src/agent/desired.ts";
import { createLogger } from "../../src/agent/log.ts";
import type { Alert } from "../../src/delivery/mod.ts";
import type { TrapEngine } from "../../src/engine/mod.ts";
import { ScriptedEngine } from "./_fixtures.ts";

/** A watch cache the test fills. */
class FakeWatch {
  synced = true;
  items: KubernetesObject[] = [];
  list() {
    return this.items;
  }
  start() {
    return Promise.resolve();
  }
  stop() {
    return Promise.resolve();
  }
}

/** Every API call the agent makes, by verb and object; Leases kept in memory. */
class RecordingApi {
  calls: string[] = [];
  lease?: Record<string, unknown>;
  failReports = false;
  core = {
    patchNamespacedConfigMap: (r: { name: string }) => this.#record(`apply configmap ${r.name}`),
    deleteNamespacedConfigMap: (r: { name: string }) => {
      this.calls.push(`delete configmap ${r.name}`);
      return Promise.reject({ code: 404 });
    },
    readNamespacedSecret: () => Promise.reject({ code: 404 }),
  };
  custom = {
    patchNamespacedCustomObject: (r: { plural: string; name: string }) => {
      if (this.failReports && r.plural === "kivenodereports") {
        this.calls.push(`refused ${r.plural} ${r.name}`);
        return Promise.reject({ code: 500, body: "etcd is unhappy" });
      }
      return this.#record(`apply ${r.plural} ${r.name}`);
    },
    patchNamespacedCustomObjectStatus: (r: { name: string; body: { status: unknown } }) =>
      this.#record(`status ${r.name} ${JSON.stringify(r.body.status)}`),
    deleteNamespacedCustomObject: (r: { name: string }) => this.#record(`delete ${r.name}`),
    listClusterCustomObject: () => Promise.resolve({ items: [] }),
    listNamespacedCustomObject: () => Promise.resolve({ items: [] }),
  };
  coordination = {
    readNamespacedLease: () =>
      this.lease ? Promise.resolve(structuredClone(this.lease)) : Promise.reject({ code: 404 }),
    createNamespacedLease: (r: { body: Record<string, unknown> }) => {
      this.lease = { ...r.body, metadata: { ...r.body.metadata as object, resourceVersion: "1" } };
      return Promise.resolve(this.lease);
    },
    replaceNamespacedLease: (r: { body: Record<string, unknown> }) => {
      this.lease = r.body;
      return Promise.resolve(this.lease);
    },
  };
  events = { createNamespacedEvent: () => Promise.resolve({}) };
  #record(call: string) {
    this.calls.push(call);
    return Promise.resolve({});
  }
}

/** Plants every target at once, as inode 1000 + its trap index. */
class ScriptedPlanter implements TrapPlanter {
  planted: string[] = [];
  plant(target: TrapTarget): Promise<PlantResult> {
    this.planted.push(target.trap.path);
    return Promise.resolve({ ok: true, dev: 42, ino: String(1000 + target.trapIndex) });
  }
}

function setup(options: { writesPolicyConditions?: () => boolean } = {}) {
  const api = new RecordingApi();
  const engine = new ScriptedEngine();
  const watches = {
    policies: new FakeWatch(),
    pods: new FakeWatch(),
    peers: new FakeWatch(),
    reports: new FakeWatch(),
  };
  watches.policies.items = [{
    apiVersion: "kivebpf.san7o.github.io/v2alpha1",
    kind: "KivePolicy",
    metadata: { name: "p", namespace: "default", uid: "uid-p", generation: 1 },
    spec: { traps: [{ path: "/secret.txt", matchAny: [{ pod: "web" }] }] },
  } as KubernetesObject];
  watches.pods.items = [{
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: "default", uid: "uid-web" },
    spec: { nodeName: "node-a", containers: [{ name: "app" }] },
    status: {
      phase: "Running",
      containerStatuses: [{
        name: "app",
        containerID: `containerd://${"a".repeat(64)}`,
        state: { running: {} },
      }],
    },
  } as KubernetesObject];
  const lines: string[] = [];
  const alerts: Alert[] = [];
  const planter = new ScriptedPlanter();
  const agent = new NodeAgent({
    nodeName: "node-a",
    namespace: "kivebpf-system",
    kernelId: "kernel-1",
    apis: {
      kubeConfig: {} as never,
      core: api.core as never,
      custom: api.custom as never,
      coordination: api.coordination as never,
      events: api.events as never,
    },
    planter,
    output: { deliver: (alert) => alerts.push(alert) },
    openEngine: () => Promise.resolve(engine as unknown as TrapEngine),
    log: createLogger("debug", (line) => lines.push(line)),
    resyncSeconds: 3600,
    leaseRetrySeconds: 0.05,
    watches: watches as never,
    ...options,
  });
  return { agent, api, engine, planter, lines, watches };
}

async function until(what: string, probe: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !probe(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(probe(), `timed out waiting for ${what}`);
}

Deno.test("one pass plants, arms as leader, writes the node's report and the totals, and hands nothing over on an unshared kernel", async () => {
  const { agent, api, engine, planter } = setup();
  await agent.start();
  try {
    await until("leading", () => agent.leading);
    await agent.settle();
    await agent.settle(); // the totals, once the report watch has the report (scripted: empty)
    assert.deepEqual(planter.planted.slice(0, 1), ["/secret.txt"]);
    assert.deepEqual(engine.armed().map((a) => a.key), [{ dev: 42, ino: 1000n }]);
    assert.ok(
      api.calls.includes(`apply kivenodereports ${nodeReportName("p", "node-a")}`),
      api.calls.join("\n"),
    );
    assert.ok(
      api.calls.some((c) => c.startsWith("status p ")),
      `the totals are written: ${api.calls.join("\n")}`,
    );
    assert.ok(!api.calls.some((c) => c.startsWith("apply configmap")), "no hand-over write");
    assert.ok(api.calls.includes("delete configmap kivebpf-node-node-a"), "old ones withdrawn");
  } finally {
    await agent.stop();
  }
});

Deno.test("a stage that throws is logged and stops no other stage, in this pass or the next", async () => {
  let throwing = true;
  const { agent, api, engine, lines } = setup({
    writesPolicyConditions: () => {
      if (throwing) throw new Error("the certificate Lease cannot be read");
      return true;
    },
  });
  api.failReports = true;
  await agent.start();
  try {
    await until("leading", () => agent.leading);
    await agent.settle();
    assert.ok(lines.some((l) => l.includes("reconcile stage conditions failed")), lines.join("\n"));
    assert.ok(lines.some((l) => l.includes("cannot write KiveNodeReport")));
    assert.equal(engine.armed().length, 1, "the kernel stage ran though later ones failed");
    throwing = false;
    api.failReports = false;
    await agent.settle();
    assert.ok(
      api.calls.includes(`apply kivenodereports ${nodeReportName("p", "node-a")}`),
      "retried at the next pass",
    );
  } finally {
    await agent.stop();
  }
});
