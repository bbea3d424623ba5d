// Smoke check of the VM kernel matrix (scripts/vm_matrix.sh -- scripts/vm/smoke_test.ts).
// Proves, inside the qemu VM, that Deno reaches libbpf.so.1 through FFI, that the stock kernel
// has the BPF LSM active and BTF, and that the hook of KIVEBPF_BACKEND (lsm, fentry, kprobe or
// tracepoint) loads, attaches and counts this process's own opens.
// Outside the VM (KIVEBPF_VM unset) every test is ignored: the development kernel refuses lsm/fentry.
import assert from "node:assert/strict";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env
  }
}

const inVm = env("KIVEBPF_VM") === "1";
const backend = env("KIVEBPF_BACKEND") ?? "lsm";
const smokeObject = env("KIVEBPF_VM_SMOKE_OBJ");
const programs: Record<string, string> = {
  lsm: "smoke_lsm",
  fentry: "smoke_fentry",
  kprobe: "smoke_kprobe",
  tracepoint: "smoke_tracepoint",
};

const symbols = {
  libbpf_major_version: { parameters: [], result: "u32" },
  libbpf_minor_version: { parameters: [], result: "u32" },
  libbpf_get_error: { parameters: ["pointer"], result: "i64" },
  bpf_object__open_file: { parameters: ["buffer", "pointer"], result: "pointer" },
  bpf_object__find_program_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_object__next_program: { parameters: ["pointer", "pointer"], result: "pointer" },
  bpf_program__set_autoload: { parameters: ["pointer", "bool"], result: "i32" },
  bpf_program__name: { parameters: ["pointer"], result: "pointer" },
  bpf_object__load: { parameters: ["pointer"], result: "i32" },
  bpf_object__find_map_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_map__update_elem: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "u64"],
    result: "i32",
  },
  bpf_map__lookup_elem: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "u64"],
    result: "i32",
  },
  bpf_program__attach: { parameters: ["pointer"], result: "pointer" },
  bpf_link__destroy: { parameters: ["pointer"], result: "i32" },
  bpf_object__close: { parameters: ["pointer"], result: "void" },
} as const;

function cstr(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

Deno.test({
  name: "vm smoke: libbpf.so.1 answers through Deno FFI",
  ignore: !inVm,
  fn() {
    const lib = Deno.dlopen("libbpf.so.1", symbols);
    try {
      const major = lib.symbols.libbpf_major_version();
      const minor = lib.symbols.libbpf_minor_version();
      console.log(`libbpf ${major}.${minor}`);
      assert.ok(major >= 1, `libbpf major version ${major}`);
    } finally {
      lib.close();
    }
  },
});

Deno.test({
  name: "vm smoke: stock kernel has the BPF LSM active and BTF",
  ignore: !inVm,
  fn() {
    const lsm = Deno.readTextFileSync("/sys/kernel/security/lsm");
    assert.ok(lsm.split(",").includes("bpf"), `active LSMs: ${lsm}`);
    assert.ok(Deno.statSync("/sys/kernel/btf/vmlinux").isFile);
  },
});

Deno.test({
  name: `vm smoke: ${backend} program loads, attaches and counts an open`,
  ignore: !inVm || smokeObject === undefined,
  fn() {
    const wanted = programs[backend];
    assert.ok(wanted, `unknown KIVEBPF_BACKEND ${backend}`);
    const lib = Deno.dlopen("libbpf.so.1", symbols);
    const s = lib.symbols;
    const obj = s.bpf_object__open_file(cstr(smokeObject!), null);
    assert.ok(obj, `bpf_object__open_file(${smokeObject}): ${s.libbpf_get_error(obj)}`);
    let link: Deno.PointerValue = null;
    try {
      for (
        let p = s.bpf_object__next_program(obj, null);
        p;
        p = s.bpf_object__next_program(obj, p)
      ) {
        const name = Deno.UnsafePointerView.getCString(s.bpf_program__name(p)!);
        assert.equal(s.bpf_program__set_autoload(p, name === wanted), 0);
      }
      const err = s.bpf_object__load(obj);
      assert.equal(err, 0, `bpf_object__load of ${wanted} failed: ${err}`);
      const key = new Uint8Array(4);
      const tgid = new Uint32Array([Deno.pid]);
      const cfg = s.bpf_object__find_map_by_name(obj, cstr("cfg"));
      assert.ok(cfg);
      assert.equal(s.bpf_map__update_elem(cfg, key, 4n, new Uint8Array(tgid.buffer), 4n, 0n), 0);
      const prog = s.bpf_object__find_program_by_name(obj, cstr(wanted));
      link = s.bpf_program__attach(prog);
      assert.ok(link, `bpf_program__attach(${wanted}): ${s.libbpf_get_error(link)}`);
      for (let i = 0; i < 3; i++) Deno.readTextFileSync("/proc/self/status");
      const hits = new BigUint64Array(1);
      const hitsMap = s.bpf_object__find_map_by_name(obj, cstr("hits"));
      assert.ok(hitsMap);
      assert.equal(
        s.bpf_map__lookup_elem(hitsMap, key, 4n, new Uint8Array(hits.buffer), 8n, 0n),
        0,
      );
      console.log(`${backend}: ${wanted} counted ${hits[0]} opens`);
      assert.ok(hits[0] >= 3n, `${wanted} counted ${hits[0]} opens, expected >= 3`);
    } finally {
      if (link) s.bpf_link__destroy(link);
      s.bpf_object__close(obj);
      lib.close();
    }
  },
});
