/**
 * What the benchmark reads about a process and its BPF objects: CPU time and resident
 * memory from procfs, per-program run time (kernel bpf_stats) and per-map memory from
 * /proc/<pid>/fdinfo, and a scoped switch for bpf_stats.
 *
 * @module
 */

/** CPU time and memory of a process at one moment. */
export interface ProcSample {
  /** utime + stime in seconds. */
  cpuSeconds: number;
  /** VmRSS, KiB. */
  rssKiB: number;
  /** VmHWM (peak resident), KiB. */
  hwmKiB: number;
  /** performance.now() when read, ms. */
  atMs: number;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ is 100 on Linux). */
const USER_HZ = 100;

/**
 * Reads a process's CPU time and memory.
 *
 * @param pid the process
 * @returns the sample
 */
export function readProc(pid: number | "self"): ProcSample {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1]);
  return { cpuSeconds, rssKiB: kib("VmRSS"), hwmKiB: kib("VmHWM"), atMs: performance.now() };
}

/** CPU use between two samples, in percent of one CPU. */
export function cpuPercent(a: ProcSample, b: ProcSample): number {
  const ms = b.atMs - a.atMs;
  return ms > 0 ? ((b.cpuSeconds - a.cpuSeconds) * 1000 * 100) / ms : NaN;
}

/** One fd's fdinfo as key/value pairs. */
function fdinfo(pid: number | "self", fd: number): Record<string, string> {
  const out: Record<string, string> = {};
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${fd}`);
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    const at = line.indexOf(":");
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return out;
}

function fds(pid: number | "self"): number[] {
  return [...Deno.readDirSync(`/proc/${pid}/fdinfo`)].map((e) => Number(e.name)).filter(
    Number.isInteger,
  );
}

/** Cumulative run time of one BPF program (kernel bpf_stats; zero while they are off). */
export interface ProgStats {
  progId: number;
  runTimeNs: number;
  runCnt: number;
}

/**
 * Reads a program's run time through a process's fd of it.
 *
 * @param pid the process holding the program fd
 * @param progId the program id (see {@linkcode progIdOfLink})
 * @returns the counters, or null if the process holds no fd of it
 */
export function readProgStats(pid: number | "self", progId: number): ProgStats | null {
  for (const fd of fds(pid)) {
    const info = fdinfo(pid, fd);
    if (info.prog_type !== undefined && Number(info.prog_id) === progId) {
      return {
        progId,
        runTimeNs: Number(info.run_time_ns ?? 0),
        runCnt: Number(info.run_cnt ?? 0),
      };
    }
  }
  return null;
}

/**
 * The id of the program a BPF link fd runs.
 *
 * @param pid the process holding the link
 * @param linkFd the link's fd
 * @returns the program id, or null
 */
export function progIdOfLink(pid: number | "self", linkFd: number): number | null {
  const id = fdinfo(pid, linkFd).prog_id;
  return id === undefined ? null : Number(id);
}

/**
 * The id of the program behind a program fd.
 *
 * @param pid the process
 * @param progFd the fd
 * @returns the id, or null
 */
export function progIdOfFd(pid: number | "self", progFd: number): number | null {
  const id = fdinfo(pid, progFd).prog_id;
  return id === undefined ? null : Number(id);
}

/** One BPF map a process holds. */
export interface MapMemory {
  id: number;
  name: string;
  type: string;
  maxEntries: number;
  memlockBytes: number;
}

/** BPF map types by number (include/uapi/linux/bpf.h), for the ones the engine uses. */
const MAP_TYPES: Record<number, string> = {
  1: "hash",
  2: "array",
  6: "percpu_array",
  27: "ringbuf",
};

/**
 * Lists the BPF maps a process holds with their memory (fdinfo `memlock`); names come from
 * `bpftool map show -j` when bpftool is installed.
 *
 * @param pid the process
 * @returns one entry per map
 */
export async function readMaps(pid: number): Promise<MapMemory[]> {
  const maps = new Map<number, MapMemory>();
  for (const fd of fds(pid)) {
    const info = fdinfo(pid, fd);
    if (info.map_type === undefined || info.map_id === undefined) continue;
    const id = Number(info.map_id);
    maps.set(id, {
      id,
      name: "",
      type: MAP_TYPES[Number(info.map_type)] ?? `type ${info.map_type}`,
      maxEntries: Number(info.max_entries),
      memlockBytes: Number(info.memlock),
    });
  }
  try {
    const out = await new Deno.Command("bpftool", { args: ["map", "show", "-j"], stderr: "null" })
      .output();
    if (out.success) {
      for (
        const m of JSON.parse(new TextDecoder().decode(out.stdout)) as {
          id: number;
          name?: string;
        }[]
      ) {
        const entry = maps.get(m.id);
        if (entry) entry.name = m.name ?? "";
      }
    }
  } catch {
    // no bpftool: maps are known by type and size
  }
  return [...maps.values()].sort((a, b) => b.memlockBytes - a.memlockBytes);
}

const libs = {
  libbpf: {
    // int bpf_enable_stats(enum bpf_stats_type type);
    bpf_enable_stats: { parameters: ["i32"], result: "i32" },
  },
  libc: {
    // int close(int fd);
    close: { parameters: ["i32"], result: "i32" },
  },
} as const satisfies Record<string, Deno.ForeignLibraryInterface>;

const BPF_STATS_RUN_TIME = 0;

/**
 * Turns kernel bpf_stats (run_time_ns, run_cnt per program) on until disposed, through
 * BPF_ENABLE_STATS: the kernel keeps them on while the returned fd is open, and other users
 * of `kernel.bpf_stats_enabled` are not disturbed.
 *
 * @returns a disposable that turns them off again
 * @throws {Error} when the kernel refuses
 */
export function enableBpfStats(): Disposable {
  const libbpf = Deno.dlopen(Deno.env.get("KIVEBPF_LIBBPF") ?? "libbpf.so.1", libs.libbpf);
  const libc = Deno.dlopen("libc.so.6", libs.libc);
  const fd = libbpf.symbols.bpf_enable_stats(BPF_STATS_RUN_TIME);
  libbpf.close();
  if (fd < 0) {
    libc.close();
    throw new Error(`Cannot enable BPF run-time stats: bpf_enable_stats returned ${fd}`);
  }
  let open = true;
  return {
    [Symbol.dispose]() {
      if (!open) return;
      open = false;
      libc.symbols.close(fd);
      libc.close();
    },
  };
}

/**
 * Reads the pids a load generator prints, one `<word> <pid>` line per process it started
 * (chroot_sleep), until `count` are known or the stream ends.
 *
 * @param stdout the child's stdout
 * @param count how many to wait for
 * @returns the pids, fewer than `count` only if the stream ended first
 */
export async function readPidLines(
  stdout: ReadableStream<Uint8Array>,
  count: number,
): Promise<number[]> {
  const pids: number[] = [];
  let text = "";
  const reader = stdout.pipeThrough(new TextDecoderStream()).getReader();
  while (pids.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    const lines = text.split("\n");
    text = lines.pop() ?? "";
    for (const line of lines) if (line) pids.push(Number(line.split(" ")[1]));
  }
  reader.cancel().catch(() => {});
  return pids;
}
