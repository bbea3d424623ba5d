/**
 * Test helpers: the compiled BPF object and small C programs, built on demand.
 *
 * @module
 */

const repo = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/** The repository root, with a trailing slash. */
export const REPO = repo;

/**
 * The path of the trap object: env KIVEBPF_BPF_OBJECT (a VM without a compiler uses a
 * prebuilt object), else scripts/build_bpf.sh builds .cache/bpf/trap.bpf.o (a no-op
 * when the sources did not change).
 */
export async function bpfObjectPath(): Promise<string> {
  const env = Deno.env.get("KIVEBPF_BPF_OBJECT");
  if (env) return env;
  const { code, stderr } = await new Deno.Command("sh", {
    args: [`${repo}scripts/build_bpf.sh`],
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`scripts/build_bpf.sh failed (${code}): ${new TextDecoder().decode(stderr)}`);
  }
  return `${repo}.cache/bpf/trap.bpf.o`;
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Compiles a C program (static, so it also runs in a minimal VM) into
 * .cache/kivebpf-test/, reusing the binary while the source is unchanged.
 *
 * @param name binary name
 * @param source C source
 * @returns the binary's path
 */
export async function buildC(name: string, source: string): Promise<string> {
  const dir = `${repo}.cache/kivebpf-test`;
  await Deno.mkdir(dir, { recursive: true });
  const hash = (await sha256(source)).slice(0, 16);
  const bin = `${dir}/${name}-${hash}`;
  try {
    await Deno.stat(bin);
    return bin;
  } catch {
    // not built yet
  }
  await Deno.writeTextFile(`${bin}.c`, source);
  const { code, stderr } = await new Deno.Command("gcc", {
    args: ["-O2", "-static", "-pthread", "-o", `${bin}.tmp`, `${bin}.c`],
  }).output();
  if (code !== 0) throw new Error(`gcc ${name}: ${new TextDecoder().decode(stderr)}`);
  await Deno.rename(`${bin}.tmp`, bin);
  return bin;
}
