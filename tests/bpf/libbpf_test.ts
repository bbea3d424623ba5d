import assert from "node:assert/strict";
import {
  BPF_NOEXIST,
  BpfError,
  BpfObject,
  libbpfPath,
  libbpfVersion,
  possibleCpus,
  RingBuffer,
  strerror,
} from "../../src/bpf/mod.ts";
import { bpfObjectPath } from "./_object.ts";
import { bpfFds } from "./_fdinfo.ts";

// The probe-read variant: it loads on every supported kernel (trap_sys_exit needs 6.2+).
const TRACEPOINT_PROGRAMS = ["trap_sys_exit_compat", "trap_exec"];

/** Opens the trap object with only the tracepoint programs, loads it. */
async function loadTracepoint(): Promise<BpfObject> {
  const obj = BpfObject.open(await bpfObjectPath());
  try {
    for (const p of obj.programs()) p.setAutoload(TRACEPOINT_PROGRAMS.includes(p.name));
    obj.map("events").setMaxEntries(1 << 16);
    obj.map("trap_map").setMaxEntries(1024);
    obj.map("lost_counts").setMaxEntries(1025);
    obj.load();
    return obj;
  } catch (error) {
    obj.close();
    throw error;
  }
}

function trapKey(dev: number, ino: number): Uint8Array<ArrayBuffer> {
  const key = new Uint8Array(16);
  const v = new DataView(key.buffer);
  v.setBigUint64(0, BigInt(dev), true);
  v.setBigUint64(8, BigInt(ino), true);
  return key;
}

function trapValue(trapId: number, slot: number): Uint8Array<ArrayBuffer> {
  const value = new Uint8Array(16);
  const v = new DataView(value.buffer);
  v.setUint32(0, trapId, true);
  v.setUint32(8, slot, true);
  return value;
}

Deno.test("libbpf is found and reports its version", () => {
  assert.match(libbpfPath(), /libbpf\.so/);
  assert.match(libbpfVersion(), /^v\d+\.\d+/);
  assert.ok(possibleCpus() >= 1);
  assert.equal(strerror(1), "Operation not permitted");
});

Deno.test("BpfObject.open() names the file and errno when it is missing", () => {
  assert.throws(
    () => BpfObject.open("/nonexistent/trap.bpf.o"),
    (error: unknown) => {
      assert.ok(error instanceof BpfError);
      assert.equal(error.op, "bpf_object__open_file");
      assert.equal(error.errno, 2);
      assert.equal(
        error.message,
        'Cannot open BPF object "/nonexistent/trap.bpf.o": No such file or directory (errno 2)',
      );
      return true;
    },
  );
});

Deno.test("BpfObject lists the programs of every backend and the trap maps", async () => {
  using obj = BpfObject.open(await bpfObjectPath());
  const sections = Object.fromEntries(obj.programs().map((p) => [p.name, p.sectionName]));
  assert.deepEqual(sections, {
    trap_lsm_file_open: "lsm/file_open",
    trap_fentry_file_open: "fentry/security_file_open",
    trap_kprobe_file_open: "kprobe/security_file_open",
    trap_sys_exit: "tp_btf/sys_exit",
    trap_sys_exit_compat: "tp_btf/sys_exit",
    trap_io_uring_complete: "tp_btf/io_uring_complete",
    trap_io_uring_overflow: "tp_btf/io_uring_cqe_overflow",
    trap_io_uring_submit: "tp_btf/io_uring_submit_req",
    trap_io_uring_submit_sqe: "tp_btf/io_uring_submit_sqe",
    trap_exec: "tp_btf/sched_process_exec",
  });
  const trapMap = obj.map("trap_map");
  assert.equal(trapMap.keySize, 16);
  assert.equal(trapMap.valueSize, 16);
  assert.equal(trapMap.maxEntries, 1, "a placeholder: user space sizes it");
  assert.equal(obj.map(".bss").valueSize, 24);
  assert.equal(obj.map("trapped_cgroups").keySize, 8);
  assert.throws(() => obj.map("nope"), RangeError);
  assert.equal(trapMap.fd, -1, "no fd before load");
});

Deno.test("load() and attach() work with the tracepoint programs; close() frees links and fds", async () => {
  const before = bpfFds();
  const obj = await loadTracepoint();
  const links = TRACEPOINT_PROGRAMS.map((name) => obj.program(name).attach());
  const during = bpfFds();
  for (const link of links) assert.ok(during.links.includes(link.fd), `link fd ${link.fd} open`);
  assert.ok(during.maps.includes(obj.map("trap_map").fd));
  links[0].close();
  links[0].close(); // idempotent
  assert.equal(links[0].fd, -1);
  obj.close(); // destroys the remaining link
  obj.close();
  assert.equal(links[1].fd, -1);
  const after = bpfFds();
  assert.deepEqual(after, before);
  assert.throws(() => obj.map("trap_map"), TypeError);
});

Deno.test("BpfMap update, lookup, delete and keys round-trip on the trap map", async () => {
  using obj = await loadTracepoint();
  const map = obj.map("trap_map");
  const key = trapKey(254 << 20, 42);
  assert.equal(map.lookup(key), null);
  map.update(key, trapValue(7, 1));
  assert.deepEqual(map.lookup(key), trapValue(7, 1));
  assert.throws(
    () => map.update(key, trapValue(8, 1), BPF_NOEXIST),
    (error: unknown) =>
      error instanceof BpfError && error.op === "bpf_map_update_elem" && error.errno === 17 &&
      error.message === 'Cannot update BPF map "trap_map": File exists (errno 17)',
  );
  map.update(trapKey(1, 2), trapValue(9, 2));
  assert.equal(map.keys().length, 2);
  assert.equal(map.delete(key), true);
  assert.equal(map.delete(key), false);
  assert.deepEqual(map.keys(), [trapKey(1, 2)]);
  assert.throws(() => map.lookup(new Uint8Array(3)), RangeError);
  const lost = obj.map("lost_counts");
  assert.equal(lost.lookupSize, 8, "one counter per trap, not one per CPU");
  assert.ok(possibleCpus() >= 1);
});

Deno.test("RingBuffer delivers the record of an open of an armed inode", async () => {
  using obj = await loadTracepoint();
  const dir = await Deno.makeTempDir({ prefix: "kivebpf-bpf-" });
  try {
    const file = `${dir}/trap.txt`;
    await Deno.writeTextFile(file, "x");
    const st = await Deno.stat(file);
    // glibc st_dev -> kernel encoding (tested properly in tests/common/dev_test.ts)
    const dev = Number(((BigInt(st.dev) >> 8n) & 0xfffn) << 20n | (BigInt(st.dev) & 0xffn));
    obj.map("trap_map").update(trapKey(dev, st.ino!), trapValue(77, 1));
    const config = new Uint8Array(24);
    new DataView(config.buffer).setUint32(12, 1, true); // trap_config.armed: 1 key
    obj.map(".bss").update(new Uint8Array(4), config);
    using _l1 = obj.program("trap_sys_exit_compat").attach();
    const records: Uint8Array[] = [];
    using rb = new RingBuffer(obj.map("events").fd, (data) => {
      records.push(data.slice());
    });
    const { code } = await new Deno.Command("cat", { args: [file], stdout: "null" }).output();
    assert.equal(code, 0);
    for (let i = 0; i < 20 && records.length === 0; i++) rb.poll(50);
    assert.equal(records.length, 1);
    const v = new DataView(records[0].buffer);
    assert.equal(v.getUint32(64, true), 77, "trap_id");
    assert.equal(v.getBigUint64(24, true), BigInt(st.ino!), "ino");
    assert.equal(v.getUint32(60, true), 36, "mask: MAY_OPEN | MAY_READ");
    rb.close();
    rb.close();
    assert.throws(() => rb.poll(0), TypeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
