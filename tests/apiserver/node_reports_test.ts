/**
 * KiveNodeReports against a real API server: a node's report is created with its labels and
 * owner, not written again while unchanged, deleted when the node stops reporting; an agent
 * restarted with fewer policies deletes the reports it wrote before; names past 253 characters
 * are shortened into valid names. No policy object is needed: the reports only name their
 * owner, and this API server runs no garbage collector.
 */
import assert from "node:assert/strict";
import { CustomObjectsApi } from "@kubernetes/client-node";
import {
  buildNodeReportCrd,
  GROUP,
  type KivePolicyV2,
  NODE_REPORT_PLURAL,
  nodeReportName,
} from "../../src/api/mod.ts";
import { createLogger } from "../../src/agent/log.ts";
import { NodeReportWriter } from "../../src/agent/node_reports.ts";
import { nodeStatusEntries } from "../../src/agent/status.ts";
import type { TrapTarget } from "../../src/agent/desired.ts";
import { loadKubeConfig } from "../../src/kube/mod.ts";
import { TestKube } from "../_support/kube.ts";
import { waitFor } from "../_support/wait.ts";
import { apply } from "./_install.ts";

const kube = await TestKube.fromEnv();
const crdName = `${NODE_REPORT_PLURAL}.${GROUP}`;
await apply(kube, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`, {
  ...buildNodeReportCrd(),
});
await waitFor("the report CRD", async () => {
  const crd = await kube.ok(
    "GET",
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`,
  );
  // deno-lint-ignore no-explicit-any
  return crd.status?.conditions?.some((c: any) => c.type === "Established" && c.status === "True");
});
const NS = "default";
const custom = loadKubeConfig(Deno.env.get("KUBECONFIG")).makeApiClient(CustomObjectsApi);
const reportsPath = `/apis/${GROUP}/v2alpha1/namespaces/${NS}/${NODE_REPORT_PLURAL}`;

function policy(name: string): KivePolicyV2 {
  return {
    apiVersion: `${GROUP}/v2alpha1`,
    kind: "KivePolicy",
    metadata: { name, namespace: NS, uid: `uid-${name}`, generation: 2 },
    spec: { traps: [{ path: "/t.txt", matchAny: [{ pod: "p" }] }] },
  } as KivePolicyV2;
}

function entriesFor(node: string, policies: KivePolicyV2[]) {
  return nodeStatusEntries(
    node,
    "kernel-1",
    "tracepoint",
    policies.map((p) => ({
      ok: true as const,
      target: {
        key: `${p.metadata.uid}/0/${node}`,
        policy: {
          namespace: NS,
          name: p.metadata.name!,
          uid: p.metadata.uid!,
          generation: 2,
        },
        alertVersion: "v1",
        trapIndex: 0,
        trap: p.spec.traps[0],
        pod: { namespace: NS, name: "p", uid: "pod-uid" },
        container: { name: "app", id: "containerd://x" },
      } as unknown as TrapTarget,
    })),
    [],
  );
}

function writer(node: string, lines: string[] = []) {
  return new NodeReportWriter({
    nodeName: node,
    custom,
    log: createLogger("info", (line) => lines.push(line)),
    describe: (error) => String(error),
  });
}

Deno.test("a node's reports are created once, kept while unchanged, and deleted when it stops reporting", async () => {
  const run = `r${Date.now()}`;
  const [a, b] = [policy(`${run}-a`), policy(`${run}-b`)];
  const node = `${run}-node`;
  const lines: string[] = [];
  const first = writer(node, lines);
  // Right after the CRD is established the API server may refuse an apply for a moment (the
  // agent retries at its next pass, as this does).
  const report = await waitFor("the first report", async () => {
    await first.write(entriesFor(node, [a, b]), [a, b]);
    const got = await kube.request(
      "GET",
      `${reportsPath}/${nodeReportName(a.metadata.name!, node)}`,
    );
    return got.status === 200 ? got.body : undefined;
  });
  lines.length = 0;
  assert.equal(report.armed, 1);
  assert.equal(report.notArmed, 0);
  assert.equal(report.node, node);
  assert.deepEqual(report.policy, { name: a.metadata.name, uid: a.metadata.uid, generation: 2 });
  assert.equal(report.metadata.labels[`${GROUP}/policy`], a.metadata.name);
  assert.equal(report.metadata.labels[`${GROUP}/policy-uid`], a.metadata.uid);
  assert.deepEqual(report.metadata.ownerReferences.map((o: { uid: string }) => o.uid), [
    a.metadata.uid,
  ]);
  const version = report.metadata.resourceVersion;
  await first.write(entriesFor(node, [a, b]), [a, b]);
  const again = await kube.ok("GET", `${reportsPath}/${nodeReportName(a.metadata.name!, node)}`);
  assert.equal(again.metadata.resourceVersion, version, "unchanged: not written again");

  // b no longer matches here: its report goes.
  await first.write(entriesFor(node, [a]), [a, b]);
  const gone = await kube.request(
    "GET",
    `${reportsPath}/${nodeReportName(b.metadata.name!, node)}`,
  );
  assert.equal(gone.status, 404);

  // Restarted, the agent reports on nothing any more: the report it wrote before goes too.
  await writer(node).write(new Map(), [a, b]);
  const left = await kube.ok(
    "GET",
    `${reportsPath}?labelSelector=${encodeURIComponent(`${GROUP}/node=${node}`)}`,
  );
  assert.deepEqual(left.items, []);
  assert.deepEqual(lines.filter((l) => l.includes("WARN")), []);
});

Deno.test("names past 253 characters are shortened into valid names, distinct per node", async () => {
  const long = `p${"x".repeat(200)}`;
  const p = policy(long);
  const nodes = [`n${"y".repeat(100)}-1`, `n${"y".repeat(100)}-2`];
  const lines: string[] = [];
  for (const node of nodes) await writer(node, lines).write(entriesFor(node, [p]), [p]);
  assert.deepEqual(lines.filter((l) => l.includes("WARN")), []);
  const names = nodes.map((node) => nodeReportName(long, node));
  assert.ok(names.every((name) => name.length <= 253));
  assert.notEqual(names[0], names[1]);
  for (const [i, name] of names.entries()) {
    const report = await kube.ok("GET", `${reportsPath}/${name}`);
    assert.equal(report.node, nodes[i]);
    assert.equal(report.metadata.labels[`${GROUP}/policy`], undefined, "too long for a label");
    await writer(nodes[i]).write(new Map(), [p]);
  }
});
