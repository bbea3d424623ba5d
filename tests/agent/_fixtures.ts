/**
 * Registrations and kernel events for the agent's unit tests.
 *
 * @module
 */
import type { TrapRegistration } from "../../src/agent/alert.ts";
import type { AccessEvent, TrapKey } from "../../src/engine/mod.ts";

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

/**
 * A trap engine without BPF: arms like the trap map, refuses what the real one refuses (a block
 * off lsm, keys in `refuse`), and streams the events it is given.
 */
export class ScriptedEngine {
  armedKeys = new Map<string, { key: TrapKey; trapId: number; block: boolean }>();
  refuse = new Set<string>();
  unpinned = false;
  closed = false;
  pins?: { root: string; mapsDir: string; adoptedMaps: boolean; adoptedLinks: boolean };
  pinError?: string;
  programs = ["trap_sys_exit"];
  #queue: AccessEvent[] = [];
  #wake?: () => void;
  constructor(readonly backend = "tracepoint") {}
  arm(key: TrapKey, trapId: number, options: { block?: boolean } = {}) {
    if (options.block && this.backend !== "lsm") throw new RangeError("block needs lsm");
    if (this.refuse.has(`${key.dev}:${key.ino}`)) throw new Error("bpf_map_update_elem: E2BIG");
    this.armedKeys.set(`${key.dev}:${key.ino}`, { key, trapId, block: options.block ?? false });
  }
  disarm(key: TrapKey) {
    return this.armedKeys.delete(`${key.dev}:${key.ino}`);
  }
  armed() {
    return [...this.armedKeys.values()];
  }
  cgroupFilter() {
    return null;
  }
  setCgroupFilter() {}
  unpin() {
    this.unpinned = true;
  }
  push(event: AccessEvent) {
    this.#queue.push(event);
    this.#wake?.();
  }
  async *events(): AsyncIterableIterator<AccessEvent> {
    while (!this.closed) {
      const next = this.#queue.shift();
      if (next) yield next;
      else await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
  close() {
    this.closed = true;
    this.#wake?.();
    return Promise.resolve();
  }
}
