/**
 * Decoding of `struct trap_event` (bpf/trap_event.h). Private to src/engine/; used
 * by the ring buffer Worker. tests/engine/event_layout_test.ts checks these offsets
 * against the compiled object's BTF.
 *
 * @module
 */
import type { AccessEvent, Hook } from "./types.ts";

/** Byte offsets and sizes of `struct trap_event`, mirrored from bpf/trap_event.h. */
export const TRAP_EVENT_LAYOUT = {
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
} as const;

/** sizeof(struct trap_event): the largest record the kernel sends. */
export const TRAP_EVENT_SIZE = 8296;
/** Offset of the variable part (data[]). */
export const TRAP_EVENT_HEADER = TRAP_EVENT_LAYOUT.data[0];
/** sizeof(struct trap_key). */
export const TRAP_KEY_SIZE = 16;
/** sizeof(struct trap_value). */
export const TRAP_VALUE_SIZE = 16;
/** sizeof(struct trap_config). */
export const TRAP_CONFIG_SIZE = 24;
/** sizeof(struct trap_learned). */
export const TRAP_LEARNED_SIZE = 24;
/** TRAP_FLAG_BLOCK of trap_value.flags. */
export const TRAP_FLAG_BLOCK = 1;

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
 * Decodes one ring buffer record.
 *
 * @param bytes the record (copied or not: nothing keeps a reference to it)
 * @param bootToRealtimeNs CLOCK_REALTIME - CLOCK_BOOTTIME, to turn boot_ns into wall time
 * @returns the event, or null for a record of an unknown kind or too short
 */
export function decodeTrapEvent(bytes: Uint8Array, bootToRealtimeNs: bigint): AccessEvent | null {
  if (bytes.length < TRAP_EVENT_HEADER) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(32, true) !== KIND_ACCESS) return null;
  const exeLen = v.getUint16(80, true);
  const argsLen = v.getUint16(82, true);
  const cwdLen = v.getUint16(84, true);
  const truncated = v.getUint32(76, true);
  const data = bytes.subarray(TRAP_EVENT_HEADER);
  if (exeLen + argsLen + cwdLen > data.length) return null;
  const bootNs = v.getBigUint64(0, true);
  return {
    kind: "access",
    timeNs: bootNs + bootToRealtimeNs,
    bootNs,
    cgroupId: v.getBigUint64(8, true),
    dev: Number(v.getBigUint64(16, true)),
    ino: v.getBigUint64(24, true),
    pid: v.getUint32(36, true),
    tgid: v.getUint32(40, true),
    ppid: v.getUint32(44, true),
    uid: v.getUint32(48, true),
    gid: v.getUint32(52, true),
    mntNs: v.getUint32(56, true),
    mask: v.getUint32(60, true),
    trapId: v.getUint32(64, true),
    blocked: v.getUint32(68, true) === 1,
    hook: HOOKS[v.getUint32(72, true)] ?? "tracepoint",
    comm: cstr(bytes.subarray(88, 104)),
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
