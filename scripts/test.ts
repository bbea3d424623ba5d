/**
 * Runs every test stage and ends with one line `N passed, N failed` summed over all of them.
 *
 * Stages, in order: `static` (fmt, lint, type-check, generated files), `unit`, `apiserver`
 * * (a real kube-apiserver and etcd built from the Go module proxy), `chaos` (faults and hostile
 * input against the same), `bpf` (the engine on this kernel, as root), `e2e` (a real cluster),
 * `vm` (the engine on Debian's stock kernel in qemu, once per backend).
 *
 * Usage: `deno task test [--only stage,stage] [--skip stage,stage]`.
 *
 * @module
 */
import { parseArgs } from "node:util";

const ROOT = new URL("../", import.meta.url).pathname;
const DENO = Deno.execPath();

/** Counts of one stage. */
interface Tally {
  passed: number;
  failed: number;
  skipped: number;
}

/** A stage runs commands and tallies their results. */
interface Stage {
  name: string;
  run(): Promise<Tally>;
}

const decoder = new TextDecoder();

/** Runs a command with inherited output, also keeping the text for parsing. */
async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; text: string }> {
  console.log(`\n$ ${command} ${args.join(" ")}`);
  const child = new Deno.Command(command, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>, sink: typeof Deno.stdout) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      await sink.write(chunk);
    }
  };
  await Promise.all([pump(child.stdout, Deno.stdout), pump(child.stderr, Deno.stderr)]);
  const { code } = await child.status;
  return { code, text };
}

/** Reads Deno's summary line `ok | 3 passed | 0 failed | 1 ignored`. */
function denoTally(text: string, code: number): Tally {
  const match = [
    ...text.matchAll(
      /(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \((\d+) steps?\))?(?: \| (\d+) ignored)?/g,
    ),
  ].at(-1);
  if (!match) return { passed: 0, failed: 1, skipped: 0 };
  const tally = {
    passed: Number(match[1]),
    failed: Number(match[3]),
    skipped: Number(match[5] ?? 0),
  };
  // A crash after the summary (for example a leaked op) still fails the stage.
  if (code !== 0 && tally.failed === 0) tally.failed = 1;
  return tally;
}

/** Reads a plain `N passed, N failed` line, as the VM matrix prints it. */
function plainTally(text: string, code: number): Tally {
  const match = [...text.matchAll(/^(\d+) passed, (\d+) failed/gm)].at(-1);
  if (!match) return { passed: 0, failed: 1, skipped: 0 };
  const tally = { passed: Number(match[1]), failed: Number(match[2]), skipped: 0 };
  if (code !== 0 && tally.failed === 0) tally.failed = 1;
  return tally;
}

async function step(name: string, command: string, args: string[]): Promise<Tally> {
  const { code } = await run(command, args);
  console.log(`${code === 0 ? "PASS" : "FAIL"} ${name}`);
  return { passed: code === 0 ? 1 : 0, failed: code === 0 ? 0 : 1, skipped: 0 };
}

function add(a: Tally, b: Tally): Tally {
  return {
    passed: a.passed + b.passed,
    failed: a.failed + b.failed,
    skipped: a.skipped + b.skipped,
  };
}

async function denoTest(paths: string[], env: Record<string, string> = {}): Promise<Tally> {
  const { code, text } = await run(DENO, ["test", "-A", ...paths], env);
  return denoTally(text, code);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(`${ROOT}${path}`);
    return true;
  } catch {
    return false;
  }
}

/** Runs `paths` against a kube-apiserver + etcd of their own (built once, then cached). */
async function againstApiServer(paths: string[]): Promise<Tally> {
  const build = await run("bash", [
    "-c",
    "bash scripts/build_k8s.sh && bash scripts/fetch_prometheus.sh",
  ]);
  if (build.code !== 0) return { passed: 0, failed: 1, skipped: 0 };
  const dir = await Deno.makeTempDir({ prefix: "kivebpf-apiserver-" });
  const start = await run("bash", ["scripts/apiserver.sh", "start", dir]);
  try {
    if (start.code !== 0) return { passed: 0, failed: 1, skipped: 0 };
    const bpf = await run("bash", ["scripts/build_bpf.sh"]);
    if (bpf.code !== 0) return { passed: 0, failed: 1, skipped: 0 };
    return await denoTest(paths, {
      KUBECONFIG: `${dir}/kubeconfig`,
      KIVEBPF_KUBECTL: `${ROOT}.cache/k8s/bin/kubectl`,
    });
  } finally {
    await run("bash", ["scripts/apiserver.sh", "stop", dir]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const stages: Stage[] = [
  {
    name: "static",
    async run() {
      let tally = { passed: 0, failed: 0, skipped: 0 };
      tally = add(tally, await step("deno fmt --check", DENO, ["fmt", "--check"]));
      tally = add(tally, await step("deno lint", DENO, ["lint"]));
      tally = add(
        tally,
        await step("deno check", DENO, ["check", "mod.ts", "src/", "tests/", "scripts/"]),
      );
      tally = add(
        tally,
        await step("generated files up to date", DENO, ["run", "-A", "scripts/gen.ts", "--check"]),
      );
      return tally;
    },
  },
  {
    name: "unit",
    async run() {
      // promtool checks the shipped Prometheus rules (tests/prometheus), helm the chart (tests/helm).
      const tools = await run("bash", [
        "-c",
        "bash scripts/fetch_prometheus.sh && bash scripts/build_helm.sh",
      ]);
      if (tools.code !== 0) return { passed: 0, failed: 1, skipped: 0 };
      return await denoTest([
        "tests/api",
        "tests/common",
        "tests/webhook",
        "tests/agent",
        "tests/delivery",
        "tests/decoys",
        "tests/prometheus",
        "tests/helm",
        "tests/cli",
      ]);
    },
  },
  {
    name: "apiserver",
    run: () => againstApiServer(["tests/apiserver", "tests/kube", "tests/integration"]),
  },
  {
    // Faults and hostile input against the real API server, runc containers and the kernel:
    // agents killed, upgraded and replaced, the API server stopped, hostile trap paths and
    // odd policies. Every case asserts that no access goes unaccounted.
    name: "chaos",
    run: () => againstApiServer(["tests/chaos"]),
  },
  {
    name: "bpf",
    async run() {
      const build = await run("bash", ["scripts/build_bpf.sh"]);
      if (build.code !== 0) return { passed: 0, failed: 1, skipped: 0 };
      return await denoTest(["tests/bpf", "tests/engine", "tests/containers", "tests/bench"]);
    },
  },
  {
    name: "e2e",
    async run() {
      const prepare = await run("bash", [
        "-c",
        "bash scripts/build_k8s.sh all && bash scripts/build_bpf.sh && bash scripts/build_helm.sh && " +
        "bash scripts/cluster.sh up",
      ]);
      if (prepare.code !== 0) return { passed: 0, failed: 1, skipped: 0 };
      try {
        return await denoTest(["tests/e2e"], {
          KUBECONFIG: `${ROOT}.cache/cluster/kubeconfig`,
        });
      } finally {
        await run("bash", ["scripts/cluster.sh", "down"]);
      }
    },
  },
  {
    name: "vm",
    async run() {
      const { code, text } = await run("bash", ["scripts/vm_matrix.sh"]);
      return plainTally(text, code);
    },
  },
];

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { only: { type: "string" }, skip: { type: "string" } },
  });
  const only = values.only?.split(",");
  const skip = values.skip?.split(",") ?? [];
  const unknown = [...(only ?? []), ...skip].filter((name) => !stages.some((s) => s.name === name));
  if (unknown.length > 0) {
    console.error(
      `Unknown stage(s) ${unknown.join(", ")}; stages are ${stages.map((s) => s.name).join(", ")}`,
    );
    Deno.exit(2);
  }
  const deps = await run("bash", ["scripts/install_deps.sh"]);
  let total: Tally = { passed: 0, failed: deps.code === 0 ? 0 : 1, skipped: 0 };
  const lines: string[] = [];
  for (const stage of stages) {
    if ((only && !only.includes(stage.name)) || skip.includes(stage.name)) continue;
    if (!(await exists(`tests/${stage.name}`)) && ["apiserver", "chaos"].includes(stage.name)) {
      continue;
    }
    console.log(`\n=== stage ${stage.name} ===`);
    const started = performance.now();
    let tally: Tally;
    try {
      tally = await stage.run();
    } catch (error) {
      console.error(`stage ${stage.name} crashed:`, error);
      tally = { passed: 0, failed: 1, skipped: 0 };
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    lines.push(
      `${
        stage.name.padEnd(10)
      } ${tally.passed} passed, ${tally.failed} failed, ${tally.skipped} skipped (${seconds} s)`,
    );
    total = add(total, tally);
  }
  console.log(`\n=== summary ===\n${lines.join("\n")}`);
  console.log(
    `${total.passed} passed, ${total.failed} failed${
      total.skipped ? `, ${total.skipped} skipped` : ""
    }`,
  );
  Deno.exit(total.failed === 0 ? 0 : 1);
}
