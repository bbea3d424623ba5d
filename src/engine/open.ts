/**
 * Opening the engine: option checks, trying each backend in turn (automatic mode) and
 * starting the reader Worker.
 *
 * @module
 */
import { BpfError } from "../bpf/mod.ts";
import { loadBackend, type Loaded, type TrapConfig } from "./load.ts";
import { positiveInt } from "./_limits.ts";
import { TrapEngine } from "./engine.ts";
import type { Backend, BackendAttempt } from "./types.ts";

/** Backends in the order automatic mode tries them. */
export const BACKENDS: readonly Backend[] = ["lsm", "fentry", "kprobe", "tracepoint"];

const PAGE_SIZE = 4096;

/** Options of {@linkcode openEngine}. */
export interface EngineOptions {
  /** A backend, or "auto" (default) for the first of {@linkcode BACKENDS} that loads and attaches. */
  backend?: Backend | "auto";
  /** The compiled object. Default: env KIVEBPF_BPF_OBJECT, else `.cache/bpf/trap.bpf.o` of the repo. */
  objectPath?: string;
  /** Size of the trap map (armed keys). Default 65536. */
  maxTraps?: number;
  /** Ring buffer size in bytes: a power of two, at least 4096. Default 1 MiB. */
  ringBufferBytes?: number;
  /** Merge repeats by the same process to the same trap within this window. Default 0 (off). */
  aggregateWindowMs?: number;
  /** Longest wait of the reader Worker in the kernel, in ms. Default 100. */
  pollIntervalMs?: number;
  /** Process whose accesses never raise events. Default: this process. 0: none. */
  agentTgid?: number;
  /**
   * Events buffered in user space for a slow consumer before further ones are counted
   * lost. Default 65536. The reader pauses well before (it stops reading the kernel's
   * ring buffer while a few batches are not yet taken), so a slow consumer leaves the
   * overflow in the kernel, where it is counted per trap.
   */
  maxQueuedEvents?: number;
  /** Size of the cgroup filter's map (see {@linkcode TrapEngine.setCgroupFilter}). Default 4096. */
  maxCgroups?: number;
  /**
   * A directory on bpffs (e.g. `/sys/fs/bpf/kivebpf/<boot id>`) to pin the programs and maps
   * under, so that they outlive this process, and to adopt a predecessor's pins from (its
   * armed traps, and the events and losses that accumulated meanwhile). See
   * src/engine/pins.ts. Pinning that fails (not bpffs) leaves the engine unpinned:
   * {@linkcode TrapEngine.pinError} says why. Default: none.
   */
  pinDir?: string;
}

/** No requested backend could be loaded and attached. */
export class BackendError extends Error {
  /** The backend asked for ("auto" when every backend was tried). */
  readonly backend: Backend | "auto";
  /** Why each backend failed. */
  readonly attempts: BackendAttempt[];

  /**
   * Builds the error from the failed attempts.
   *
   * @param backend the backend asked for
   * @param attempts why each tried backend failed
   * @param options the last failure as `cause`
   */
  constructor(backend: Backend | "auto", attempts: BackendAttempt[], options?: ErrorOptions) {
    super(
      backend === "auto"
        ? `No BPF backend works on this kernel: ${
          attempts.map((a) => `${a.backend}: ${a.reason}`).join("; ")
        }`
        : `Cannot use BPF backend "${backend}": ${attempts[0]?.reason ?? "unknown"}`,
      options,
    );
    this.name = "BackendError";
    this.backend = backend;
    this.attempts = attempts;
  }
}

/** The default object path: env KIVEBPF_BPF_OBJECT, else the repo's build output. */
export function defaultObjectPath(): string {
  const env = Deno.env.get("KIVEBPF_BPF_OBJECT");
  if (env) return env;
  return decodeURIComponent(new URL("../../.cache/bpf/trap.bpf.o", import.meta.url).pathname);
}

/**
 * Loads the trap programs with the first working backend (or the one asked for),
 * attaches them and starts the reader Worker. Needs root (CAP_BPF, CAP_PERFMON,
 * CAP_SYS_ADMIN for lsm) and `--allow-ffi --allow-read --allow-env`.
 *
 * @param options see {@linkcode EngineOptions}
 * @returns the running engine; close it
 * @throws {BackendError} when no (or not the asked) backend loads and attaches
 * @throws {BpfError} when the object cannot be opened or the ring buffer read
 *
 * @example
 * ```ts
 * await using engine = await openEngine({ backend: "auto" });
 * engine.armPath("/srv/secret.txt", 7);
 * for await (const event of engine.events()) console.log(event);
 * ```
 */
export async function openEngine(options: EngineOptions = {}): Promise<TrapEngine> {
  const requested = options.backend ?? "auto";
  if (requested !== "auto" && !BACKENDS.includes(requested)) {
    throw new TypeError(`Unknown BPF backend "${requested}": use auto or ${BACKENDS.join(", ")}`);
  }
  const maxTraps = positiveInt("maxTraps", options.maxTraps ?? 65536, 1, 1 << 24);
  const ringBufferBytes = positiveInt(
    "ringBufferBytes",
    options.ringBufferBytes ?? 1 << 20,
    PAGE_SIZE,
    1 << 30,
  );
  if ((ringBufferBytes & (ringBufferBytes - 1)) !== 0) {
    throw new RangeError(`ringBufferBytes must be a power of two, got ${ringBufferBytes}`);
  }
  const agentTgid = positiveInt("agentTgid", options.agentTgid ?? Deno.pid, 0, 2 ** 32 - 1);
  const maxCgroups = positiveInt("maxCgroups", options.maxCgroups ?? 4096, 1, 1 << 20);
  const maxQueuedEvents = positiveInt(
    "maxQueuedEvents",
    options.maxQueuedEvents ?? 65536,
    1,
    2 ** 30,
  );
  const config: TrapConfig = { agentTgid, learnTgid: 0, learnPid: 0, armed: 0, cgroupFilter: 0 };
  const path = options.objectPath ?? defaultObjectPath();

  const attempts: BackendAttempt[] = [];
  let loaded: Loaded | null = null;
  let backend: Backend | null = null;
  let lastError: unknown;
  for (const candidate of requested === "auto" ? BACKENDS : [requested]) {
    try {
      loaded = loadBackend(
        path,
        candidate,
        { maxTraps, ringBufferBytes, maxCgroups },
        config,
        options.pinDir,
      );
      backend = candidate;
      break;
    } catch (error) {
      if (error instanceof BpfError && error.op === "bpf_object__open_file") throw error;
      lastError = error;
      attempts.push({
        backend: candidate,
        reason: error instanceof Error ? error.message : String(error),
        errno: error instanceof BpfError ? error.errno : undefined,
      });
    }
  }
  if (!loaded || !backend) throw new BackendError(requested, attempts, { cause: lastError });

  const engine = new TrapEngine(loaded, backend, attempts, {
    maxTraps,
    maxCgroups,
    maxQueuedEvents,
    config,
  });
  try {
    await engine.startReader(
      positiveInt("pollIntervalMs", options.pollIntervalMs ?? 100, 1, 10_000),
      positiveInt("aggregateWindowMs", options.aggregateWindowMs ?? 0, 0, 3_600_000),
      ringBufferBytes,
    );
  } catch (error) {
    await engine.close();
    throw error;
  }
  return engine;
}
