/**
 * The environment block every result carries: what machine, kernel, backend and code the
 * numbers were measured on.
 *
 * @module
 */
import { REPO } from "./_build.ts";

/** Where a result was measured. */
export interface Environment {
  cpuModel: string;
  cpus: number;
  kernel: string;
  backend: string;
  /** /sys/devices/system/cpu/vulnerabilities/*, name to state. */
  mitigations: Record<string, string>;
  /** `mitigations=` on the kernel command line, if any. */
  mitigationsCmdline: string;
  deno: string;
  libbpf: string;
  commit: string;
  /** Uncommitted changes in the working tree. */
  dirty: boolean;
  /** kernel.bpf_jit_enable. */
  bpfJit: string;
  /** Load average when the run started (other work on a shared machine shows here). */
  loadAverage: number[];
  /** Running in the VM kernel matrix (software emulation: only ratios mean anything). */
  vm: boolean;
  startedAt: string;
}

function read(path: string): string {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return "";
  }
}

async function git(args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command("git", { args, cwd: REPO, stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

/**
 * Collects the environment block.
 *
 * @param backend the engine's backend
 * @param libbpf the libbpf version in use
 * @returns the block
 */
export async function collectEnvironment(backend: string, libbpf: string): Promise<Environment> {
  const mitigations: Record<string, string> = {};
  try {
    for (
      const entry of [...Deno.readDirSync("/sys/devices/system/cpu/vulnerabilities")].sort((
        a,
        b,
      ) => a.name.localeCompare(b.name))
    ) {
      mitigations[entry.name] = read(`/sys/devices/system/cpu/vulnerabilities/${entry.name}`);
    }
  } catch {
    // not exposed
  }
  const cmdline = read("/proc/cmdline");
  return {
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(read("/proc/cpuinfo"))?.[1] ?? "unknown",
    cpus: navigator.hardwareConcurrency,
    kernel: Deno.osRelease(),
    backend,
    mitigations,
    mitigationsCmdline: /(?:^|\s)mitigations=(\S+)/.exec(cmdline)?.[1] ?? "",
    deno: Deno.version.deno,
    libbpf,
    commit: (await git(["rev-parse", "HEAD"])) || "unknown",
    dirty: (await git(["status", "--porcelain", "--untracked-files=no"])) !== "",
    bpfJit: read("/proc/sys/net/core/bpf_jit_enable"),
    loadAverage: read("/proc/loadavg").split(" ").slice(0, 3).map(Number),
    vm: Deno.env.get("KIVEBPF_VM") === "1",
    startedAt: new Date().toISOString(),
  };
}
