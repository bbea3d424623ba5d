import assert from "node:assert/strict";
import type { KivePolicyV2, NodeReportBody } from "../../src/api/mod.ts";
import { createLogger } from "../../src/agent/log.ts";
import { groupByPolicy, PolicyTotals } from "../../src/agent/policy_totals.ts";

/** A report watch that is synced once started, with reports the test sets. */
class FakeReports {
  started = 0;
  stopped = 0;
  synced = false;
  items: NodeReportBody[] = [];
  start() {
    this.started++;
    this.synced = true;
    return Promise.resolve();
  }
  stop() {
    this.stopped++;
    this.synced = false;
    return Promise.resolve();
  }
  list() {
    return this.items as never[];
  }
}

const policy = { metadata: { uid: "u1", name: "p", namespace: "ns" } } as KivePolicyV2;
const report = (node: string, armed: number): NodeReportBody => ({
  policy: { name: "p", uid: "u1" },
  node,
  armed,
});

Deno.test("PolicyTotals watches reports only while writing, and writes a policy at most once per interval", async () => {
  const reports = new FakeReports();
  const writes: { armed: number; at: number }[] = [];
  let changed = true; // whether the policy's status would change
  const writer = {
    writeConditions(
      _policies: readonly KivePolicyV2[],
      byPolicy: ReadonlyMap<string, readonly NodeReportBody[]>,
      _invalid: ReadonlyMap<string, string>,
      due: (uid: string) => boolean,
    ) {
      if (!changed) return Promise.resolve({ written: [], held: [] });
      if (!due("u1")) return Promise.resolve({ written: [], held: ["u1"] });
      writes.push({ armed: byPolicy.get("u1")!.reduce((s, r) => s + r.armed, 0), at: Date.now() });
      return Promise.resolve({ written: ["u1"], held: [] });
    },
  };
  const later: number[] = [];
  const totals = new PolicyTotals(reports as never, writer as never, createLogger("error"), {
    intervalMs: 300,
    later: (ms) => later.push(ms),
  });
  await totals.pass(false, [policy], new Map());
  assert.equal(reports.started, 0, "no watch while another agent writes");
  reports.items = [report("a", 1)];
  await totals.pass(true, [policy], new Map());
  assert.equal(reports.started, 1);
  assert.deepEqual(writes.map((w) => w.armed), [1]);

  // A burst of node changes: held back, and a pass asked for when the interval ends.
  reports.items = [report("a", 1), report("b", 1)];
  await totals.pass(true, [policy], new Map());
  reports.items = [report("a", 1), report("b", 1), report("c", 1)];
  await totals.pass(true, [policy], new Map());
  assert.equal(writes.length, 1, "within the interval: no second write");
  assert.equal(later.length, 2);
  assert.ok(later[1] > 0 && later[1] <= 300, `asked for a pass in ${later[1]} ms`);
  await new Promise((resolve) => setTimeout(resolve, later[1]));
  await totals.pass(true, [policy], new Map());
  assert.deepEqual(writes.map((w) => w.armed), [1, 3], "the latest totals, once");

  changed = false;
  await totals.pass(true, [policy], new Map());
  assert.equal(writes.length, 2, "nothing to change: nothing written");
  await totals.pass(false, [policy], new Map());
  assert.equal(reports.stopped, 1, "the watch stops with the role");
});

Deno.test("groupByPolicy() groups reports by policy uid and skips objects without one", () => {
  const grouped = groupByPolicy([
    report("a", 1),
    { ...report("b", 2), policy: { name: "q", uid: "u2" } },
    { node: "x" },
  ] as never[]);
  assert.deepEqual([...grouped.keys()], ["u1", "u2"]);
  assert.equal(grouped.get("u1")![0].node, "a");
});
