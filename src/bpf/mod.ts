/**
 * A thin binding to libbpf (Debian's `libbpf.so.1`, 1.1 or later) through Deno FFI:
 * open and load BPF objects, attach programs, read and write maps, read ring buffers.
 *
 * The library is found through env `KIVEBPF_LIBBPF`, then `libbpf.so.1`, then known
 * distribution paths. Needs `--allow-ffi` (and root, or CAP_BPF and CAP_PERFMON, to load).
 *
 * @example
 * ```ts
 * import { BpfObject } from "./mod.ts";
 * using obj = BpfObject.open(".cache/bpf/trap.bpf.o");
 * obj.load();
 * ```
 *
 * @module
 */
export { BpfError, strerror } from "./bpf_error.ts";
export {
  BPF_ANY,
  BPF_EXIST,
  BPF_NOEXIST,
  BpfMap,
  closeFd,
  lookupElem,
  openPinned,
  possibleCpus,
} from "./bpf_map.ts";
export { BpfObject, type StructLayout, type StructMember } from "./bpf_object.ts";
export { BpfProgram } from "./bpf_program.ts";
export { BpfLink } from "./bpf_link.ts";
export { RingBuffer } from "./ring_buffer.ts";
export { libbpfPath, libbpfVersion, monotonicClocks, openAndClose, threadId } from "./system.ts";
