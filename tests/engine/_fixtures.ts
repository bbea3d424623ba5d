/**
 * Engine test fixtures: an engine per test with the backend from env
 * KIVEBPF_BACKEND (default auto), a background collector of its events, and helpers
 * to run processes and wait for their events.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type AccessEvent,
  type Backend,
  BACKENDS,
  type EngineEvent,
  type EngineOptions,
  openEngine,
  type TrapEngine,
} from "../../src/engine/mod.ts";
import { bpfObjectPath } from "../bpf/_object.ts";

/** The backend the test run asks for: env KIVEBPF_BACKEND, default "auto". */
export function requestedBackend(): Backend | "auto" {
  const env = Deno.env.get("KIVEBPF_BACKEND") ?? "auto";
  if (env !== "auto" && !BACKENDS.includes(env as Backend)) {
    throw new TypeError(`KIVEBPF_BACKEND must be auto or ${BACKENDS.join(", ")}, got "${env}"`);
  }
  return env as Backend | "auto";
}

/** Collects an engine's events in the background. */
export class Collector {
  /** Every event so far. */
  readonly events: EngineEvent[] = [];
  #done: Promise<void>;

  constructor(engine: TrapEngine) {
    this.#done = (async () => {
      for await (const event of engine.events()) this.events.push(event);
    })();
  }

  /** Access events of one trap id. */
  accesses(trapId: number): AccessEvent[] {
    return this.events.filter((e): e is AccessEvent => e.kind === "access" && e.trapId === trapId);
  }

  /**
   * Waits until `count` access events of `trapId` arrived, then a little longer so that
   * extra events would show, and returns them all.
   */
  async waitFor(trapId: number, count: number, timeoutMs = 5000): Promise<AccessEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.accesses(trapId).length < count && Date.now() < deadline) await sleep(20);
    await sleep(300);
    return this.accesses(trapId);
  }

  /** Resolves when the stream ended (after the engine closed). */
  finished(): Promise<void> {
    return this.#done;
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Opens an engine for a test (fast polling), runs `fn`, and always closes it. */
export async function withEngine(
  fn: (engine: TrapEngine, collector: Collector) => Promise<void> | void,
  options: EngineOptions = {},
): Promise<void> {
  const engine = await openEngine({
    backend: requestedBackend(),
    objectPath: await bpfObjectPath(),
    pollIntervalMs: 20,
    ...options,
  });
  const collector = new Collector(engine);
  try {
    await fn(engine, collector);
  } finally {
    await engine.close();
    await collector.finished();
  }
}

/** A temporary directory readable by everyone (mkdtemp makes it 0700), removed by dispose. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.realPath(await Deno.makeTempDir({ prefix: "kivebpf-engine-" }));
  await Deno.chmod(path, 0o755);
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** Writes a file readable by everyone. */
export async function writeFile(path: string, text = "secret\n", mode = 0o644): Promise<void> {
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, mode);
}

/** Where a command is found in PATH, with symlinks resolved (what the kernel shows as exe). */
export function which(command: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const path = `${dir}/${command}`;
      if (Deno.statSync(path).isFile) return Deno.realPathSync(path);
    } catch {
      // not here
    }
  }
  return null;
}

/** The unprivileged user the accessing processes run as (when setpriv exists). */
export const TEST_UID = 1000;

/** Prefix that runs a command as TEST_UID, or [] (and uid 0) without setpriv. */
export function asUser(): { prefix: string[]; uid: number; gid: number } {
  return which("setpriv")
    ? {
      prefix: ["setpriv", `--reuid=${TEST_UID}`, `--regid=${TEST_UID}`, "--clear-groups"],
      uid: TEST_UID,
      gid: TEST_UID,
    }
    : { prefix: [], uid: 0, gid: 0 };
}

/** Runs a command to completion; returns its pid, exit code and output. */
export async function run(
  argv: string[],
  options: { cwd?: string } = {},
): Promise<{ pid: number; code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: options.cwd,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const { code, stdout, stderr } = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { pid: child.pid, code, stdout: decode(stdout), stderr: decode(stderr) };
}

/** This process's mount namespace inode (as /proc/self/ns/mnt shows it). */
export function hostMntNs(): number {
  const link = Deno.readLinkSync("/proc/self/ns/mnt");
  return Number(/\[(\d+)\]/.exec(link)![1]);
}

/** Asserts the process context of an event. */
export function assertProcess(
  event: AccessEvent,
  expected:
    & Partial<
      Pick<
        AccessEvent,
        | "pid"
        | "tgid"
        | "ppid"
        | "uid"
        | "gid"
        | "comm"
        | "exe"
        | "cwd"
        | "mask"
        | "mntNs"
        | "trapId"
      >
    >
    & { args?: string[] },
): void {
  const actual: Record<string, unknown> = {};
  for (const key of Object.keys(expected)) {
    actual[key] = key === "args" && expected.args
      ? [event.args[0]?.split("/").pop(), ...event.args.slice(1)]
      : event[key as keyof AccessEvent];
  }
  const wanted: Record<string, unknown> = { ...expected };
  if (expected.args) wanted.args = [expected.args[0]?.split("/").pop(), ...expected.args.slice(1)];
  assert.deepEqual(actual, wanted);
}
