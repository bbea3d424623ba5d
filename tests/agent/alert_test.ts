import assert from "node:assert/strict";
import { SEED_ALERT_KEYS } from "../_support/alert_keys.ts";
import type { AccessEvent } from "../../src/engine/mod.ts";
import {
  accessKind,
  buildAlert,
  buildLossAlert,
  type TrapRegistration,
} from "../../src/agent/alert.ts";

const registration: TrapRegistration = {
  dev: 42,
  ino: "16256084",
  policy: { namespace: "kivebpf-system", name: "kive-sample-policy", uid: "u" },
  trapIndex: 0,
  path: "/secret.txt",
  alertVersion: "v1",
  metadata: { severity: "medium" },
  action: "alert",
  pod: { namespace: "default", name: "nginx-pod", uid: "pod-uid" },
  container: { name: "nginx", id: "containerd://0c37" },
  node: "kive-worker",
};

const event: AccessEvent = {
  kind: "access",
  timeNs: 1754153479_123456789n,
  bootNs: 5n,
  cgroupId: 77n,
  mntNs: 4026532000,
  dev: 42,
  ino: 16256084n,
  pid: 176928,
  tgid: 176928,
  ppid: 176900,
  uid: 0,
  gid: 0,
  comm: "cat",
  exe: "/usr/bin/cat",
  args: ["cat", "/secret.txt"],
  cwd: "/",
  mask: 36,
  trapId: 1,
  blocked: false,
  hook: "tracepoint",
  truncated: { exe: false, args: false, cwd: false },
  count: 1,
};

Deno.test("buildAlert() v1 has exactly the seed's keys", () => {
  const alert = buildAlert(event, registration, "2c147a95-23e5-4f99-a2de-67d5e9fdb502");
  // JSON text, not deepEqual: the key order is part of the format.
  assert.equal(
    JSON.stringify(alert),
    JSON.stringify({
      "kive-alert-version": "v1",
      "kive-policy-name": "kive-sample-policy",
      timestamp: "2025-08-02T16:51:19Z",
      metadata: {
        path: "/secret.txt",
        inode: 16256084,
        mask: 36,
        "kernel-id": "2c147a95-23e5-4f99-a2de-67d5e9fdb502",
      },
      "custom-metadata": { severity: "medium" },
      pod: {
        name: "nginx-pod",
        namespace: "default",
        container: { id: "containerd://0c37", name: "nginx" },
      },
      node: { name: "kive-worker" },
      process: {
        pid: 176928,
        tgid: 176928,
        uid: 0,
        gid: 0,
        binary: "cat",
        cwd: "/",
        arguments: "/secret.txt",
      },
    }),
  );
});

Deno.test("buildAlert() v2alpha1 adds namespace, parent, exe, argv, access kind, count and action", () => {
  const alert = buildAlert(
    { ...event, count: 3, blocked: true },
    {
      ...registration,
      alertVersion: "v2alpha1",
    },
    "k",
    "alert-7",
  );
  assert.equal(alert["kive-alert-version"], "v2alpha1");
  if (alert["kive-alert-version"] !== "v2alpha1") return;
  assert.equal(alert["kive-policy-namespace"], "kivebpf-system");
  assert.equal(alert.metadata.access, "read");
  assert.equal(alert.process.ppid, 176900);
  assert.equal(alert.process.exe, "/usr/bin/cat");
  assert.deepEqual(alert.process.argv, ["cat", "/secret.txt"]);
  assert.equal(alert.count, 3);
  assert.equal(alert.action, "blocked");
  assert.equal(alert["alert-id"], "alert-7");
  // v1's keys first, in v1's order, then v2alpha1's own.
  assert.deepEqual(Object.keys(alert), [
    ...SEED_ALERT_KEYS,
    "kive-policy-namespace",
    "timestamp-ns",
    "count",
    "action",
    "alert-id",
  ]);
  assert.deepEqual(Object.keys(alert.metadata), [
    "path",
    "inode",
    "mask",
    "kernel-id",
    "access",
    "device",
    "trap-index",
  ]);
  assert.deepEqual(Object.keys(alert.pod), ["name", "namespace", "container", "uid"]);
  assert.deepEqual(Object.keys(alert.process), [
    "pid",
    "tgid",
    "uid",
    "gid",
    "binary",
    "cwd",
    "arguments",
    "ppid",
    "exe",
    "argv",
    "cgroup-id",
    "mount-ns",
    "truncated",
  ]);
});

Deno.test("accessKind() names MAY_* masks", () => {
  assert.equal(accessKind(36), "read");
  assert.equal(accessKind(34), "write");
  assert.equal(accessKind(38), "read-write");
  assert.equal(accessKind(42), "append");
  assert.equal(accessKind(33), "exec");
});

Deno.test("buildLossAlert() keeps the trap's fields, empties process and counts the lost accesses", () => {
  const alert = buildLossAlert(registration, "k", 42);
  assert.equal(alert["lost-accesses"], 42);
  assert.deepEqual(alert.process, {});
  assert.deepEqual(alert.metadata, {
    path: "/secret.txt",
    inode: 16256084,
    mask: 0,
    "kernel-id": "k",
  });
  assert.deepEqual(alert.pod, {
    name: "nginx-pod",
    namespace: "default",
    container: { id: "containerd://0c37", name: "nginx" },
  });
  assert.deepEqual(Object.keys(alert), [
    ...SEED_ALERT_KEYS,
    "lost-accesses",
  ]);
  assert.match(alert.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});

Deno.test("a decoy's id and kind end every v2alpha1 alert of its file; v1 alerts stay the seed's", () => {
  const decoy = { id: "KIVE234567ABCDEF", kind: "aws-credentials" };
  const v2 = buildAlert(event, { ...registration, alertVersion: "v2alpha1", decoy }, "k");
  assert.deepEqual((v2 as { decoy?: unknown }).decoy, decoy);
  assert.equal(Object.keys(v2).at(-1), "decoy");
  const v1 = buildAlert(event, { ...registration, decoy }, "k");
  assert.deepEqual(Object.keys(v1), SEED_ALERT_KEYS);
  const lossV2 = buildLossAlert({ ...registration, alertVersion: "v2alpha1", decoy }, "k", 3);
  assert.deepEqual(lossV2.decoy, decoy);
  const lossV1 = buildLossAlert({ ...registration, decoy }, "k", 3);
  assert.deepEqual(Object.keys(lossV1), [...SEED_ALERT_KEYS, "lost-accesses"]);
});
