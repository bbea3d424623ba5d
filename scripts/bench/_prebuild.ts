/**
 * Builds the benchmark's C load generators and BPF programs on the host; scripts/vm_matrix.sh
 * runs this before booting the VM, which has no compiler.
 *
 * @module
 */
import { buildBpf, buildLoad } from "./_build.ts";

for (const program of ["openclose", "trap_hit", "chroot_sleep"] as const) await buildLoad(program);
await buildBpf();
