/**
 * Builds the benchmark's native pieces into `.cache/bench/`: the C load generators (gcc -O2,
 * static, so that a VM without a compiler can run the ones built on the host) and the empty
 * BPF programs of M2 (clang-19, CO-RE against the vmlinux.h of scripts/build_bpf.sh). Each
 * output is named after a hash of its source and reused while the source is unchanged.
 *
 * @module
 */

/** The repository root, with a trailing slash. */
export const REPO = decodeURIComponent(new URL("../../", import.meta.url).pathname);
/** Where the suite keeps its binaries and results. */
export const CACHE = `${REPO}.cache/bench`;

const HERE = `${REPO}scripts/bench`;

/** The load generators, by name (scripts/bench/<name>.c). */
export type LoadProgram = "openclose" | "trap_hit" | "chroot_sleep";

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function run(command: string, args: string[]): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (cause) {
    throw new Error(`Cannot run ${command} ${args.join(" ")}: ${String(cause)}`, { cause });
  }
  if (!output.success) {
    const text = new TextDecoder().decode(output.stderr);
    throw new Error(`${command} ${args.join(" ")} failed (exit ${output.code}): ${text}`);
  }
}

/**
 * Compiles scripts/bench/<name>.c unless the binary of this source exists.
 *
 * @param name the program
 * @returns the binary's path
 */
export async function buildLoad(name: LoadProgram): Promise<string> {
  const source = await Deno.readFile(`${HERE}/${name}.c`);
  const bin = `${CACHE}/${name}-${(await sha256(source)).slice(0, 12)}`;
  if (await exists(bin)) return bin;
  await Deno.mkdir(CACHE, { recursive: true });
  await run("gcc", [
    "-O2",
    "-static",
    "-pthread",
    "-Wall",
    "-o",
    `${bin}.tmp`,
    `${HERE}/${name}.c`,
  ]);
  await Deno.rename(`${bin}.tmp`, bin);
  return bin;
}

/**
 * Builds the trap object (scripts/build_bpf.sh, a no-op when unchanged) and the empty
 * programs of scripts/bench/empty.bpf.c.
 *
 * @returns the paths of both objects
 */
export async function buildBpf(): Promise<{ trap: string; empty: string }> {
  const trap = Deno.env.get("KIVEBPF_BPF_OBJECT") ?? `${REPO}.cache/bpf/trap.bpf.o`;
  const source = await Deno.readFile(`${HERE}/empty.bpf.c`);
  const empty = `${CACHE}/empty-${(await sha256(source)).slice(0, 12)}.bpf.o`;
  const haveClang = await run("clang-19", ["--version"]).then(() => true, () => false);
  if (!haveClang) {
    // A VM without a compiler uses the objects built on the host before it booted.
    for (const path of [trap, empty]) {
      if (!(await exists(path))) {
        throw new Error(`Cannot build ${path}: clang-19 is missing and no object was prebuilt`);
      }
    }
    return { trap, empty };
  }
  if (!Deno.env.get("KIVEBPF_BPF_OBJECT")) await run("sh", [`${REPO}scripts/build_bpf.sh`]);
  if (!(await exists(empty))) {
    await Deno.mkdir(CACHE, { recursive: true });
    await run("clang-19", [
      "-O2",
      "-g",
      "-Wall",
      "-Werror",
      "-target",
      "bpf",
      "-D__TARGET_ARCH_x86",
      `-I${REPO}.cache/bpf`,
      "-c",
      `${HERE}/empty.bpf.c`,
      "-o",
      `${empty}.tmp`,
    ]);
    await Deno.rename(`${empty}.tmp`, empty);
  }
  return { trap, empty };
}
