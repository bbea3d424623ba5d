import assert from "node:assert/strict";
import type { TrapTarget } from "../../src/agent/desired.ts";
import { nodeStatusEntries } from "../../src/agent/status.ts";
import { MAX_DECOYS_LISTED, MAX_DECOYS_PER_REPORT } from "../../src/api/status_schema.ts";

function target(pod: string): TrapTarget {
  return {
    key: `uid/0/${pod}/app/containerd://${pod}`,
    policy: { namespace: "ns", name: "p", uid: "uid", generation: 3 },
    alertVersion: "v2alpha1",
    trapIndex: 0,
    trap: { path: "/root/.aws/credentials", create: true } as never,
    pod: { namespace: "shop", name: pod, uid: `${pod}-uid` },
    container: { name: "app", id: `containerd://${pod}` },
  };
}

Deno.test("nodeStatusEntries() lists each armed container's decoy id, sorted, bounded", () => {
  const outcomes = [
    {
      target: target("web-b"),
      ok: true as const,
      decoy: { id: "BBBBBBBBBBBBBBBB", kind: "npmrc" },
    },
    {
      target: target("web-a"),
      ok: true as const,
      decoy: { id: "AAAAAAAAAAAAAAAA", kind: "npmrc" },
    },
    { target: target("web-c"), ok: true as const },
  ];
  const entry = nodeStatusEntries("node-a", "k", "tracepoint", outcomes, []).get("uid")!.entry;
  assert.equal(entry.armed, 3);
  assert.deepEqual(entry.traps[0].decoys, [
    { pod: "web-a", namespace: "shop", container: "app", id: "AAAAAAAAAAAAAAAA", kind: "npmrc" },
    { pod: "web-b", namespace: "shop", container: "app", id: "BBBBBBBBBBBBBBBB", kind: "npmrc" },
  ]);

  const many = Array.from({ length: MAX_DECOYS_LISTED + 5 }, (_, i) => ({
    target: target(`pod-${i}`),
    ok: true as const,
    decoy: { id: "CCCCCCCCCCCCCCCC", kind: "dotenv" },
  }));
  const big = nodeStatusEntries("node-a", "k", undefined, many, []).get("uid")!.entry;
  assert.equal(big.armed, MAX_DECOYS_LISTED + 5, "every container counts as armed");
  assert.equal(big.traps[0].decoys?.length, MAX_DECOYS_LISTED);
  assert.equal(big.decoysNotListed, 5, "counted where not listed");

  // Many traps: the report as a whole stays bounded.
  const wide = Array.from({ length: 8 }, (_, index) =>
    Array.from({ length: 300 }, (_, i) => ({
      target: { ...target(`pod-${i}`), trapIndex: index },
      ok: true as const,
      decoy: { id: "DDDDDDDDDDDDDDDD", kind: "npmrc" },
    }))).flat();
  const report = nodeStatusEntries("node-a", "k", undefined, wide, []).get("uid")!.entry;
  const listed = report.traps.reduce((sum, t) => sum + (t.decoys?.length ?? 0), 0);
  assert.equal(listed, MAX_DECOYS_PER_REPORT);
  assert.equal(report.decoysNotListed, 8 * 300 - MAX_DECOYS_PER_REPORT);
});
