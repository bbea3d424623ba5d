import assert from "node:assert/strict";
import { type KivePolicyV2, nodeReportName } from "../../src/api/mod.ts";
import { createLogger } from "../../src/agent/log.ts";
import { NodeReportWriter } from "../../src/agent/node_reports.ts";
import type { NodeStatusEntry } from "../../src/agent/status.ts";

/** A CustomObjectsApi that records what is asked of it and answers from a script. */
class RecordingCustom {
  calls: string[] = [];
  listed: unknown[] = [];
  failDelete = 0;
  patchNamespacedCustomObject(r: { namespace: string; name: string; body: unknown }) {
    this.calls.push(`apply ${r.namespace}/${r.name}`);
    return Promise.resolve(r.body);
  }
  deleteNamespacedCustomObject(r: { namespace: string; name: string }) {
    this.calls.push(`delete ${r.namespace}/${r.name}`);
    if (this.failDelete-- > 0) return Promise.reject({ code: 500, body: "boom" });
    return Promise.resolve({});
  }
  listClusterCustomObject(r: { labelSelector: string }) {
    this.calls.push(`list ${r.labelSelector}`);
    return Promise.resolve({ items: this.listed });
  }
}

const policy = (name: string) =>
  ({ metadata: { name, namespace: "ns", uid: `uid-${name}`, generation: 1 } }) as KivePolicyV2;
const entry = (armed: number): NodeStatusEntry => ({
  node: "node-a",
  kernelId: "k",
  observedGeneration: 1,
  armed,
  notArmed: 0,
  traps: [{ index: 0, path: "/t", armed }],
});
const entries = (...items: [string, number][]) =>
  new Map(items.map(([name, armed]) => [
    `uid-${name}`,
    { policy: { namespace: "ns", name, uid: `uid-${name}`, generation: 1 }, entry: entry(armed) },
  ]));

Deno.test("NodeReportWriter applies what changed, skips what did not, deletes what it no longer reports, and cleans up after a restart", async () => {
  const custom = new RecordingCustom();
  // A report an earlier run of this agent left for a policy it no longer matches.
  custom.listed = [{
    metadata: { name: "old.node-a", namespace: "ns" },
    node: "node-a",
    policy: { name: "old", uid: "uid-old" },
  }, {
    metadata: { name: "other.node-b", namespace: "ns" },
    node: "node-b", // another node's, with a label value that collided: never touched
    policy: { name: "other", uid: "uid-other" },
  }];
  const lines: string[] = [];
  const writer = new NodeReportWriter({
    nodeName: "node-a",
    custom: custom as never,
    log: createLogger("info", (line) => lines.push(line)),
    describe: (error) => JSON.stringify(error),
  });
  const [a, b] = [policy("a"), policy("b")];
  await writer.write(entries(["a", 1], ["b", 1]), [a, b]);
  assert.deepEqual(custom.calls, [
    "list kivebpf.san7o.github.io/node=node-a",
    `apply ns/${nodeReportName("a", "node-a")}`,
    `apply ns/${nodeReportName("b", "node-a")}`,
    "delete ns/old.node-a",
  ]);
  custom.calls = [];
  await writer.write(entries(["a", 1], ["b", 1]), [a, b]);
  assert.deepEqual(custom.calls, [], "nothing changed: no request");
  await writer.write(entries(["a", 2], ["b", 1]), [a, b]);
  assert.deepEqual(
    custom.calls,
    [`apply ns/${nodeReportName("a", "node-a")}`],
    "only the changed report",
  );
  custom.calls = [];
  custom.failDelete = 1;
  await writer.write(entries(["a", 2]), [a, b]);
  assert.deepEqual(custom.calls, [`delete ns/${nodeReportName("b", "node-a")}`]);
  assert.ok(lines.some((l) => l.includes("cannot delete KiveNodeReport")));
  custom.calls = [];
  await writer.write(entries(["a", 2]), [a, b]);
  assert.deepEqual(
    custom.calls,
    [`delete ns/${nodeReportName("b", "node-a")}`],
    "a failed delete is tried again",
  );
  custom.calls = [];
  await writer.write(entries(["a", 2]), [a]);
  assert.deepEqual(custom.calls, [], "gone for good once deleted");
});
