/**
 * Loading a backend's programs: which programs each backend needs on this kernel, opening
 * the object with only those set to load, sizing the maps, attaching, and writing the
 * `.bss` configuration.
 *
 * @module
 */
import { BpfError, type BpfLink, type BpfMap, BpfObject } from "../bpf/mod.ts";
import { encodeConfig, type TrapConfig } from "./_structs.ts";
import { adoptLinks, commitPins, type PinState, preparePins, removePinDir } from "./pins.ts";
import type { Backend } from "./types.ts";

/** Every backend also loads this: execs are reported the same way everywhere. */
const EXEC_PROGRAM = "trap_exec";

/**
 * The tracepoint backend's io_uring programs (io_uring opens never pass a syscall exit),
 * each with the kernel BTF type that says its tracepoint exists. The submission tracepoint
 * was renamed in 6.3; whichever exists is used.
 */
const IO_URING_PROGRAMS: readonly (readonly [program: string, btfType: string])[] = [
  ["trap_io_uring_complete", "btf_trace_io_uring_complete"],
  ["trap_io_uring_overflow", "btf_trace_io_uring_cqe_overflow"],
  ["trap_io_uring_submit", "btf_trace_io_uring_submit_req"],
  ["trap_io_uring_submit_sqe", "btf_trace_io_uring_submit_sqe"],
];

/** A loaded object and the links of its attached programs. */
export interface Loaded {
  obj: BpfObject;
  links: BpfLink[];
  /** The programs attached, in attach order. */
  programs: string[];
  /** Where the objects are pinned, when they are; see src/engine/pins.ts. */
  pins?: PinState;
  /** Why pinning was asked for and not done (the engine then runs unpinned). */
  pinError?: string;
}

export type { TrapConfig } from "./_structs.ts";

/** Map sizes chosen by the options. */
export interface MapSizes {
  maxTraps: number;
  ringBufferBytes: number;
  maxCgroups: number;
}

let ioUringPrograms: string[] | undefined;

/**
 * The io_uring programs whose tracepoints this kernel has: its BTF names each
 * tracepoint's type. Read once; a kernel without BTF has no tp_btf programs at all.
 */
function kernelIoUringPrograms(): string[] {
  if (ioUringPrograms) return ioUringPrograms;
  let btf: Uint8Array;
  try {
    btf = Deno.readFileSync("/sys/kernel/btf/vmlinux");
  } catch {
    return ioUringPrograms = [];
  }
  const encoder = new TextEncoder();
  // Type names are NUL-terminated in the BTF string section.
  return ioUringPrograms = IO_URING_PROGRAMS
    .filter(([, type]) => indexOfBytes(btf, encoder.encode(`\0${type}\0`)) >= 0)
    .map(([program]) => program);
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  const first = needle[0];
  for (let i = haystack.indexOf(first); i >= 0; i = haystack.indexOf(first, i + 1)) {
    if (i + needle.length > haystack.length) return -1;
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/**
 * The program sets of a backend on this kernel, in the order to try them: the first that
 * loads is used. The tracepoint backend's `trap_sys_exit` needs bpf_rdonly_cast (6.2+);
 * on 6.1 `trap_sys_exit_compat` does the same with probe reads. Its io_uring programs are
 * part of every set wherever the kernel has their tracepoints, so that a kernel with
 * io_uring never runs without them.
 */
export function programSets(backend: Backend): string[][] {
  switch (backend) {
    case "lsm":
      return [["trap_lsm_file_open"]];
    case "fentry":
      return [["trap_fentry_file_open"]];
    case "kprobe":
      return [["trap_kprobe_file_open"]];
    case "tracepoint": {
      const extra = kernelIoUringPrograms();
      return [["trap_sys_exit", ...extra], ["trap_sys_exit_compat", ...extra]];
    }
  }
}

/**
 * Loads and attaches one backend: the first of its program sets that loads.
 *
 * @throws {BpfError} the last set's failure
 */
export function loadBackend(
  path: string,
  backend: Backend,
  sizes: MapSizes,
  config: TrapConfig,
  pinRoot?: string,
): Loaded {
  const sets = programSets(backend);
  for (let i = 0;; i++) {
    try {
      return loadPrograms(path, sets[i], sizes, config, pinRoot);
    } catch (error) {
      if (i + 1 >= sets.length || !(error instanceof BpfError)) throw error;
    }
  }
}

function loadPrograms(
  path: string,
  programs: readonly string[],
  sizes: MapSizes,
  config: TrapConfig,
  pinRoot?: string,
): Loaded {
  const wanted = [...programs, EXEC_PROGRAM];
  const obj = BpfObject.open(path);
  const links: BpfLink[] = [];
  let pins: PinState | undefined;
  let pinError: string | undefined;
  try {
    obj.map("trap_map").setMaxEntries(sizes.maxTraps);
    obj.map("lost_counts").setMaxEntries(sizes.maxTraps + 1);
    obj.map("lost_reported").setMaxEntries(sizes.maxTraps + 1);
    obj.map("trapped_cgroups").setMaxEntries(sizes.maxCgroups);
    obj.map("events").setMaxEntries(sizes.ringBufferBytes);
    if (pinRoot) {
      try {
        pins = preparePins(pinRoot, obj, Deno.readFileSync(path), wanted);
      } catch (error) {
        pinError = describeError(error);
      }
    }
    // Adopted links need no program of ours: only the (reused) maps are set up.
    for (const p of obj.programs()) p.setAutoload(!pins?.adoptedLinks && wanted.includes(p.name));
    obj.load();
    // Adopted maps carry a live configuration (armed count, cgroup filter): the engine
    // merges its own into it; fresh ones start from ours.
    if (!pins?.adoptedMaps) writeConfig(obj.map(".bss"), config);
    if (pins?.adoptedLinks) links.push(...adoptLinks(pins, obj, wanted));
    else for (const name of wanted) links.push(obj.program(name).attach());
    if (pins) {
      try {
        commitPins(pins, obj, links);
      } catch (error) {
        pinError = describeError(error);
        if (!pins.adoptedMaps) pins = undefined;
      }
    }
    return { obj, links, programs: wanted, pins, pinError };
  } catch (error) {
    obj.close(); // destroys the links attached so far
    throw error;
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Removes every pin under `root` (see src/engine/pins.ts): nothing stays in the kernel. */
export function removePins(root: string): void {
  removePinDir(root);
}

/** Writes the whole `struct trap_config` to the object's `.bss`. */
export function writeConfig(bss: BpfMap, config: TrapConfig): void {
  bss.update(new Uint8Array(4), encodeConfig(config));
}
