/**
 * Runs the per-open cost measurements (M1, M2) inside the VM kernel matrix, once per backend,
 * and prints the result table on the serial console, where `deno task bench:vm` collects it.
 * Outside the VM (no KIVEBPF_VM) it is ignored.
 *
 * Under software emulation absolute times are meaningless; the ratios (agent vs baseline,
 * program vs empty program on the same hook) are what this measures.
 */
import assert from "node:assert/strict";

const inVm = Deno.env.get("KIVEBPF_VM") === "1";
const backend = Deno.env.get("KIVEBPF_BACKEND") ?? "auto";

Deno.test({
  name: `benchmark M1/M2 on the ${backend} backend in the VM`,
  ignore: !inVm,
  fn: async () => {
    const out = `/tmp/bench-${backend}`;
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./bench.ts", import.meta.url).pathname,
        "--backend",
        backend,
        "--only",
        "M1,M2",
        "--rounds",
        Deno.env.get("KIVEBPF_BENCH_ROUNDS") ?? "4",
        "--out",
        out,
      ],
      stdout: "null",
      stderr: "inherit",
    }).output();
    assert.equal(code, 0, "bench.ts failed");
    const table = await Deno.readTextFile(`${out}/results.md`);
    console.log(
      `KIVEBPF-BENCH-BEGIN backend=${backend}\n${table}\nKIVEBPF-BENCH-END backend=${backend}`,
    );
  },
});
