/**
 * The struct codecs against records written by hand at the offsets bpf/trap_event.h gives
 * (literal here on purpose: an independent oracle; event_layout_test checks the table
 * against BTF).
 */
import assert from "node:assert/strict";
import {
  decodeConfig,
  decodeKey,
  decodeLearned,
  decodeTrapEvent,
  decodeValue,
  encodeConfig,
  encodeKey,
  encodeValue,
} from "../../src/engine/_structs.ts";

const enc = new TextEncoder();

Deno.test("trap key, value, config and learn records encode and decode at the kernel's offsets", () => {
  const key = encodeKey({ dev: 0x0080_0003, ino: 0x1_0000_0002n });
  const kv = new DataView(key.buffer);
  assert.equal(key.length, 16);
  assert.equal(kv.getBigUint64(0, true), 0x0080_0003n);
  assert.equal(kv.getBigUint64(8, true), 0x1_0000_0002n);
  assert.deepEqual(decodeKey(key), { dev: 0x0080_0003, ino: 0x1_0000_0002n });

  const value = encodeValue({ trapId: 7, flags: 1, slot: 3 });
  const vv = new DataView(value.buffer);
  assert.deepEqual([vv.getUint32(0, true), vv.getUint32(4, true), vv.getUint32(8, true)], [
    7,
    1,
    3,
  ]);
  assert.deepEqual(decodeValue(value), { trapId: 7, flags: 1, slot: 3 });

  const config = { agentTgid: 10, learnTgid: 11, learnPid: 12, armed: 13, cgroupFilter: 1 };
  const cv = new DataView(encodeConfig(config).buffer);
  assert.deepEqual([0, 4, 8, 12, 16].map((o) => cv.getUint32(o, true)), [10, 11, 12, 13, 1]);
  assert.deepEqual(decodeConfig(new Uint8Array(cv.buffer)), config);

  const learned = new Uint8Array(24);
  const lv = new DataView(learned.buffer);
  lv.setBigUint64(0, 42n, true);
  lv.setBigUint64(8, 99n, true);
  lv.setBigUint64(16, 5n, true);
  assert.deepEqual(decodeLearned(learned), { key: { dev: 42, ino: 99n }, seq: 5n });
  assert.throws(() => decodeValue(new Uint8Array(8)), /trap_value is 16 bytes, got 8/);
});

Deno.test("a trap_event record decodes into every field, and a short or foreign record into null", () => {
  const exe = enc.encode("cat\0bin\0"); // leaf first: /bin/cat
  const args = enc.encode("cat\0/secret.txt\0");
  const cwd = enc.encode("app\0");
  const record = new Uint8Array(104 + exe.length + args.length + cwd.length);
  const v = new DataView(record.buffer);
  v.setBigUint64(0, 1_000n, true); // boot_ns
  v.setBigUint64(8, 77n, true); // cgroup_id
  v.setBigUint64(16, 0x0080_0003n, true); // dev
  v.setBigUint64(24, 12345n, true); // ino
  const u32s = [1, 101, 100, 99, 1000, 1001, 4026531840, 36, 9, 1, 4, 2];
  u32s.forEach((n, i) => v.setUint32(32 + 4 * i, n, true)); // kind .. truncated
  v.setUint16(80, exe.length, true);
  v.setUint16(82, args.length, true);
  v.setUint16(84, cwd.length, true);
  record.set(enc.encode("cat"), 88);
  record.set(exe, 104);
  record.set(args, 104 + exe.length);
  record.set(cwd, 104 + exe.length + args.length);

  const event = decodeTrapEvent(record, 5n);
  assert.deepEqual(event, {
    kind: "access",
    timeNs: 1_005n,
    bootNs: 1_000n,
    cgroupId: 77n,
    dev: 0x0080_0003,
    ino: 12345n,
    pid: 101,
    tgid: 100,
    ppid: 99,
    uid: 1000,
    gid: 1001,
    mntNs: 4026531840,
    mask: 36,
    trapId: 9,
    blocked: true,
    hook: "tracepoint",
    comm: "cat",
    exe: "/bin/cat",
    args: ["cat", "/secret.txt"],
    cwd: "/app",
    truncated: { exe: false, args: true, cwd: false },
    count: 1,
  });
  assert.equal(decodeTrapEvent(record.subarray(0, 103), 0n), null, "shorter than the header");
  v.setUint16(84, 200, true);
  assert.equal(decodeTrapEvent(record, 0n), null, "lengths past the record");
  v.setUint16(84, cwd.length, true);
  v.setUint32(32, 2, true);
  assert.equal(decodeTrapEvent(record, 0n), null, "unknown kind");
});
