/**
 * Compiles the engine tests' C programs on the host; scripts/vm_matrix.sh runs this before
 * booting the VM, which has no compiler.
 *
 * @module
 */
import { buildC } from "../bpf/_object.ts";
import { NOOP_C, OPENER_C, THREADS_C } from "./_c_programs.ts";
import { OPEN_PATHS_C } from "./_open_paths_c.ts";

await buildC("noop", NOOP_C);
await buildC("threads", THREADS_C);
await buildC("opener", OPENER_C);
await buildC("open-paths", OPEN_PATHS_C);
