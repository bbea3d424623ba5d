/**
 * Every struct user space shares with the kernel programs (bpf/trap_event.h), from one layout
 * table: the trap map's key and value, the run-time configuration in `.bss`, the learn
 * record and the ring buffer's event. tests/engine/event_layout_test.ts checks the table
 * against the compiled object's BTF, member by member; nothing outside this module holds an
 * offset. Private to src/engine/. All values are little-endian, as on every target we build.
 *
 * @module
 */
import type { AccessEvent, Hook, TrapKey } from "./types.ts";

/** A member: byte offset and size. */
export type Member = readonly [offset: number, size: number];

/** A struct: its size and its members in declaration order. */
export interface StructLayout {
  readonly size: number;
  readonly members: Readonly<Record<string, Member>>;
}

/** The layouts of bpf/trap_event.h, as the BTF of the compiled object describes them. */
export const LAYOUTS = {
  trap_key: { size: 16, members: { dev: [0, 8], ino: [8, 8] } },
  trap_value: {
    size: 16,
    members: { trap_id: [0, 4], flags: [4, 4], slot: [8, 4], pad: [12, 4] },
  },
  trap_config: {
    size: 24,
    members: {
      agent_tgid: [0, 4],
      learn_tgid: [4, 4],
      learn_pid: [8, 4],
      armed: [12, 4],
      cgroup_filter: [16, 4],
      pad: [20, 4],
    },
  },
  trap_learned: { size: 24, members: { key: [0, 16], seq: [16, 8] } },
  trap_event: {
    size: 8296,
    members: {
      boot_ns: [0, 8],
      cgroup_id: [8, 8],
      dev: [16, 8],
      ino: [24, 8],
      kind: [32, 4],
      pid: [36, 4],
      tgid: [40, 4],
      ptgid: [44, 4],
      uid: [48, 4],
      gid: [52, 4],
      mnt_ns: [56, 4],
      mask: [60, 4],
      trap_id: [64, 4],
      action: [68, 4],
      backend: [72, 4],
      truncated: [76, 4],
      exe_len: [80, 2],
      args_len: [82, 2],
      cwd_len: [84, 2],
      pad: [86, 2],
      comm: [88, 16],
      data: [104, 8192],
    },
  },
} as const satisfies Record<string, StructLayout>;

const KEY = LAYOUTS.trap_key.members;
const VALUE = LAYOUTS.trap_value.members;
const CONFIG = LAYOUTS.trap_config.members;
const LEARNED = LAYOUTS.trap_learned.members;
const EVENT = LAYOUTS.trap_event.members;

/** sizeof(struct trap_event): the largest record the kernel sends. */
export const TRAP_EVENT_SIZE = LAYOUTS.trap_event.size;
/** Offset of the event's variable part (data[]): the smallest record. */
export const TRAP_EVENT_HEADER = EVENT.data[0];
/** TRAP_FLAG_BLOCK of trap_value.flags. */
export const TRAP_FLAG_BLOCK = 1;

function bytesOf(layout: StructLayout): [Uint8Array<ArrayBuffer>, DataView] {
  const out = new Uint8Array(layout.size);
  return [out, new DataView(out.buffer)];
}

function viewOf(bytes: Uint8Array, layout: StructLayout, what: string): DataView {
  if (bytes.length < layout.size) {
    throw new RangeError(`A ${what} is ${layout.size} bytes, got ${bytes.length}`);
  }
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `struct trap_key` bytes. */
export function encodeKey(key: TrapKey): Uint8Array<ArrayBuffer> {
  const [out, v] = bytesOf(LAYOUTS.trap_key);
  v.setBigUint64(KEY.dev[0], BigInt(key.dev), true);
  v.setBigUint64(KEY.ino[0], key.ino, true);
  return out;
}

/** Decodes `struct trap_key` bytes (also the head of `struct trap_learned`). */
export function decodeKey(bytes: Uint8Array): TrapKey {
  const v = viewOf(bytes, LAYOUTS.trap_key, "trap_key");
  return { dev: Number(v.getBigUint64(KEY.dev[0], true)), ino: v.getBigUint64(KEY.ino[0], true) };
}

/** The trap map's value: which trap, what to do, which loss counter. */
export interface TrapValue {
  trapId: number;
  flags: number;
  slot: number;
}

/** `struct trap_value` bytes. */
export function encodeValue(value: TrapValue): Uint8Array<ArrayBuffer> {
  const [out, v] = bytesOf(LAYOUTS.trap_value);
  v.setUint32(VALUE.trap_id[0], value.trapId, true);
  v.setUint32(VALUE.flags[0], value.flags, true);
  v.setUint32(VALUE.slot[0], value.slot, true);
  return out;
}

/** Decodes `struct trap_value` bytes. */
export function decodeValue(bytes: Uint8Array): TrapValue {
  const v = viewOf(bytes, LAYOUTS.trap_value, "trap_value");
  return {
    trapId: v.getUint32(VALUE.trap_id[0], true),
    flags: v.getUint32(VALUE.flags[0], true),
    slot: v.getUint32(VALUE.slot[0], true),
  };
}

/** The run-time configuration, the object's single global (`.bss`). */
export interface TrapConfig {
  agentTgid: number;
  learnTgid: number;
  learnPid: number;
  armed: number;
  cgroupFilter: number;
}

/** `struct trap_config` bytes. */
export function encodeConfig(config: TrapConfig): Uint8Array<ArrayBuffer> {
  const [out, v] = bytesOf(LAYOUTS.trap_config);
  v.setUint32(CONFIG.agent_tgid[0], config.agentTgid, true);
  v.setUint32(CONFIG.learn_tgid[0], config.learnTgid, true);
  v.setUint32(CONFIG.learn_pid[0], config.learnPid, true);
  v.setUint32(CONFIG.armed[0], config.armed, true);
  v.setUint32(CONFIG.cgroup_filter[0], config.cgroupFilter, true);
  return out;
}

/** Decodes `struct trap_config` bytes (an adopted `.bss`). */
export function decodeConfig(bytes: Uint8Array): TrapConfig {
  const v = viewOf(bytes, LAYOUTS.trap_config, "trap_config");
  return {
    agentTgid: v.getUint32(CONFIG.agent_tgid[0], true),
    learnTgid: v.getUint32(CONFIG.learn_tgid[0], true),
    learnPid: v.getUint32(CONFIG.learn_pid[0], true),
    armed: v.getUint32(CONFIG.armed[0], true),
    cgroupFilter: v.getUint32(CONFIG.cgroup_filter[0], true),
  };
}

/** The key the learn program recorded last, and how many records it made. */
export interface Learned {
  key: TrapKey;
  seq: bigint;
}

/** Decodes `struct trap_learned` bytes. */
export function decodeLearned(bytes: Uint8Array): Learned {
  const v = viewOf(bytes, LAYOUTS.trap_learned, "trap_learned");
  const [keyAt, keySize] = LEARNED.key;
  return {
    key: decodeKey(bytes.subarray(keyAt, keyAt + keySize)),
    seq: v.getBigUint64(LEARNED.seq[0], true),
  };
}

/** A cgroup v2 id as the cgroup filter map's key (a `__u64`). */
export function encodeCgroupId(id: bigint): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, id, true);
  return out;
}

/** Decodes a cgroup filter map key. */
export function decodeCgroupId(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
}

const KIND_ACCESS = 1;
const HOOKS: Record<number, Hook> = {
  1: "lsm",
  2: "fentry",
  3: "kprobe",
  4: "tracepoint",
  5: "exec",
};
const TRUNC_EXE = 1;
const TRUNC_ARGS = 2;
const TRUNC_CWD = 4;
const ACTION_BLOCKED = 1;

const decoder = new TextDecoder();

function cstr(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/** Joins path components sent leaf first ("c\0b\0a\0") into "/a/b/c". */
export function joinReversedPath(bytes: Uint8Array): string {
  const parts = decoder.decode(bytes).split("\0");
  if (parts.at(-1) === "") parts.pop();
  return "/" + parts.reverse().join("/");
}

/** Splits argv as laid out in memory ("cat\0/f\0") into strings. */
export function splitArgs(bytes: Uint8Array): string[] {
  if (bytes.length === 0) return [];
  const parts = decoder.decode(bytes).split("\0");
  if (parts.at(-1) === "") parts.pop();
  return parts;
}

/**
 * Decodes one ring buffer record, `struct trap_event` cut after its used data.
 *
 * @param bytes the record (copied or not: nothing keeps a reference to it)
 * @param bootToRealtimeNs CLOCK_REALTIME - CLOCK_BOOTTIME, to turn boot_ns into wall time
 * @returns the event, or null for a record of an unknown kind or too short
 */
export function decodeTrapEvent(bytes: Uint8Array, bootToRealtimeNs: bigint): AccessEvent | null {
  if (bytes.length < TRAP_EVENT_HEADER) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (m: Member) => v.getUint32(m[0], true);
  if (u32(EVENT.kind) !== KIND_ACCESS) return null;
  const exeLen = v.getUint16(EVENT.exe_len[0], true);
  const argsLen = v.getUint16(EVENT.args_len[0], true);
  const cwdLen = v.getUint16(EVENT.cwd_len[0], true);
  const truncated = u32(EVENT.truncated);
  const data = bytes.subarray(TRAP_EVENT_HEADER);
  if (exeLen + argsLen + cwdLen > data.length) return null;
  const bootNs = v.getBigUint64(EVENT.boot_ns[0], true);
  const [commAt, commSize] = EVENT.comm;
  return {
    kind: "access",
    timeNs: bootNs + bootToRealtimeNs,
    bootNs,
    cgroupId: v.getBigUint64(EVENT.cgroup_id[0], true),
    dev: Number(v.getBigUint64(EVENT.dev[0], true)),
    ino: v.getBigUint64(EVENT.ino[0], true),
    pid: u32(EVENT.pid),
    tgid: u32(EVENT.tgid),
    ppid: u32(EVENT.ptgid),
    uid: u32(EVENT.uid),
    gid: u32(EVENT.gid),
    mntNs: u32(EVENT.mnt_ns),
    mask: u32(EVENT.mask),
    trapId: u32(EVENT.trap_id),
    blocked: u32(EVENT.action) === ACTION_BLOCKED,
    hook: HOOKS[u32(EVENT.backend)] ?? "tracepoint",
    comm: cstr(bytes.subarray(commAt, commAt + commSize)),
    exe: exeLen ? joinReversedPath(data.subarray(0, exeLen)) : "",
    args: splitArgs(data.subarray(exeLen, exeLen + argsLen)),
    cwd: joinReversedPath(data.subarray(exeLen + argsLen, exeLen + argsLen + cwdLen)),
    truncated: {
      exe: (truncated & TRUNC_EXE) !== 0,
      args: (truncated & TRUNC_ARGS) !== 0,
      cwd: (truncated & TRUNC_CWD) !== 0,
    },
    count: 1,
  };
}
