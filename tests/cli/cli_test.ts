import assert from "node:assert/strict";
import {
  alertOfLine,
  formatAlert,
  formatStatus,
  keepAlert,
  mergeAlerts,
  parseDuration,
  statusViews,
} from "../../src/cli/mod.ts";
import type { KiveAlert } from "../../src/delivery/mod.ts";
import type { KiveNodeReport } from "../../src/api/mod.ts";

function alert(pod: string, seconds: number, extra: Record<string, unknown> = {}): KiveAlert {
  return {
    "kive-alert-version": "v1",
    "kive-policy-name": "web-decoys",
    timestamp: new Date(seconds * 1000).toISOString().replace(/\.\d+Z$/, "Z"),
    metadata: { path: "/root/.aws/credentials", inode: 7, mask: 36, "kernel-id": "k" },
    "custom-metadata": {},
    pod: { name: pod, namespace: "shop", container: { id: "containerd://ab", name: "app" } },
    node: { name: "worker-1" },
    process: {
      pid: 10,
      tgid: 10,
      uid: 0,
      gid: 0,
      binary: "cat",
      cwd: "/",
      arguments: "/root/.aws/credentials",
    },
    ...extra,
  } as KiveAlert;
}

Deno.test("alertOfLine() reads the text and json lines of the kive format, and CloudEvents", () => {
  const body = alert("web-1", 100);
  const text = `2025-08-02T16:51:19Z\tINFO\tAccess Detected\t${
    JSON.stringify({ KiveAlert: body })
  }`;
  assert.deepEqual(alertOfLine(text), body);
  assert.deepEqual(alertOfLine(JSON.stringify({ level: "info", KiveAlert: body })), body);
  assert.deepEqual(alertOfLine(JSON.stringify({ specversion: "1.0", data: body })), body);
  assert.equal(alertOfLine('2025-08-02T16:51:19Z\tINFO\ttrap planted\t{"path":"/x"}'), undefined);
  assert.equal(alertOfLine("not json {"), undefined);
});

Deno.test("keepAlert() filters by pod, namespace and policy (name or namespace/name)", () => {
  const v2 = alert("web-1", 1, { "kive-policy-namespace": "kivebpf-system" });
  assert.ok(keepAlert(v2, { pod: "web-1", namespace: "shop" }));
  assert.ok(!keepAlert(v2, { pod: "web-2" }));
  assert.ok(!keepAlert(v2, { namespace: "default" }));
  assert.ok(keepAlert(v2, { policy: "web-decoys" }));
  assert.ok(keepAlert(v2, { policy: "kivebpf-system/web-decoys" }));
  assert.ok(!keepAlert(v2, { policy: "other/web-decoys" }));
  assert.ok(
    keepAlert(alert("web-1", 1), { policy: "kivebpf-system/web-decoys" }),
    "v1 names no namespace",
  );
});

Deno.test("mergeAlerts() orders alerts of several agents by time and drops repeats", () => {
  const a = alert("a", 30), b = alert("b", 10), c = alert("c", 20);
  const merged = mergeAlerts([[a, b], [c, b]]);
  assert.deepEqual(merged.map((x) => x.pod.name), ["b", "c", "a"]);
  const withIds = [
    alert("x", 1, { "alert-id": "same", "timestamp-ns": "2" }),
    alert("x", 1, { "alert-id": "same", "timestamp-ns": "2" }),
  ];
  assert.equal(mergeAlerts([withIds]).length, 1);
});

Deno.test("formatAlert() says when, where, who and what in one line", () => {
  assert.equal(
    formatAlert(
      alert("web-1", 100, { decoy: { id: "KIVE234567ABCDEF", kind: "aws-credentials" } }),
    ),
    "1970-01-01T00:01:40Z  shop/web-1 (app) on worker-1: cat /root/.aws/credentials (pid 10, uid 0) " +
      "opened /root/.aws/credentials  [policy web-decoys]  [decoy KIVE234567ABCDEF]",
  );
});

Deno.test("parseDuration() reads seconds, minutes and hours only", () => {
  assert.deepEqual(["30s", "10m", "2h", "5x", "", "1.5h"].map(parseDuration), [
    30,
    600,
    7200,
    undefined,
    undefined,
    undefined,
  ]);
});

Deno.test("statusViews() and formatStatus() join a policy with its node reports and their reasons", () => {
  const report = {
    policy: { name: "web", uid: "u1" },
    node: "worker-1",
    backend: "tracepoint",
    armed: 1,
    notArmed: 1,
    traps: [{
      index: 0,
      path: "/secret.txt",
      armed: 1,
      problems: [{
        pod: "db-0",
        namespace: "shop",
        container: "db",
        reason: "PathIsSymlink",
        message: "a symlink",
      }],
    }],
  } as unknown as KiveNodeReport;
  const other = { ...report, policy: { name: "x", uid: "u2" } } as KiveNodeReport;
  const views = statusViews([{
    metadata: { name: "web", namespace: "kivebpf-system", uid: "u1" },
    status: {
      armed: 1,
      notArmed: 1,
      conditions: [{ type: "Ready", status: "False", reason: "PartiallyArmed" }],
    },
  }], [report, other]);
  assert.equal(views[0].nodes.length, 1, "reports of other policies are left out");
  assert.equal(
    formatStatus(views),
    [
      "kivebpf-system/web: 1 armed, 1 not armed Ready=False (PartiallyArmed)",
      "  node worker-1: 1 armed, 1 not armed, backend tracepoint",
      "    trap 0 /secret.txt: 1 armed",
      "      not armed in shop/db-0 (db): PathIsSymlink: a symlink",
      "",
    ].join("\n"),
  );
});
