/**
 * Registrations and kernel events for the agent's unit tests.
 *
 * @module
 */
import type { TrapRegistration } from "../../src/agent/alert.ts";
import type { AccessEvent } from "../../src/engine/mod.ts";

/** A registration of policy `p` (uid `uid-p`) on node-a, with `extra` fields over it. */
export function registration(ino: string, extra: Partial<TrapRegistration> = {}): TrapRegistration {
  return {
    dev: 42,
    ino,
    policy: { namespace: "ns", name: "p", uid: "uid-p" },
    trapIndex: 0,
    path: "/secret.txt",
    alertVersion: "v1",
    metadata: {},
    action: "alert",
    pod: { namespace: "default", name: "pod", uid: "pod-uid" },
    container: { name: "c", id: "containerd://c" },
    node: "node-a",
    ...extra,
  };
}

/** An access by `cat` (tgid 1) of the inode `ino` on dev 42, reported for `trapId`. */
export function accessEvent(trapId: number, ino: bigint): AccessEvent {
  return {
    kind: "access",
    timeNs: 0n,
    bootNs: 0n,
    cgroupId: 0n,
    mntNs: 0,
    dev: 42,
    ino,
    pid: 1,
    tgid: 1,
    ppid: 0,
    uid: 0,
    gid: 0,
    comm: "cat",
    exe: "/bin/cat",
    args: ["cat"],
    cwd: "/",
    mask: 36,
    trapId,
    blocked: false,
    hook: "tracepoint",
    truncated: { exe: false, args: false, cwd: false },
    count: 1,
  };
}
