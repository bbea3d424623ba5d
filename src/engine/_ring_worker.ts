/**
 * The Worker that reads the engine's ring buffer, so that the agent's event loop
 * never blocks: ring_buffer__poll() waits here with a bounded timeout and calls the
 * sample callback synchronously on this thread; decoded events go to the engine in
 * batches through postMessage. Private to src/engine/.
 *
 * Protocol: the engine posts one {@linkcode StartMessage}; the worker answers
 * `ready` (or `error`), then `events` and `lost` messages, and `stopped` once the
 * shared stop flag is set and everything is drained and freed.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { lookupElem, monotonicClocks, possibleCpus, RingBuffer } from "../bpf/mod.ts";
import { decodeTrapEvent } from "./_event.ts";
import type { AccessEvent } from "./types.ts";

/** The engine's first message. */
export interface StartMessage {
  type: "start";
  /** fd of the `events` ring buffer map (fds are shared by the process's threads). */
  ringFd: number;
  /** fd of the `lost_counts` per-CPU array. */
  lostFd: number;
  /** Longest wait in ring_buffer__poll (ms): also how late a stop is seen. */
  pollMs: number;
  /** Merge repeats by the same process to the same trap within this window (0: never). */
  aggregateWindowMs: number;
  /** Int32Array flag: non-zero asks the worker to drain, free and stop. */
  stop: SharedArrayBuffer;
}

/** Messages the worker posts. */
export type WorkerMessage =
  | { type: "ready" }
  | { type: "error"; message: string; op?: string; errno?: number }
  | { type: "events"; events: AccessEvent[] }
  | { type: "lost"; total: bigint }
  | { type: "stopped" };

interface Pending {
  startMs: number;
  last: AccessEvent | null;
  repeats: number;
}

function post(message: WorkerMessage): void {
  self.postMessage(message);
}

function run(start: StartMessage): void {
  const stop = new Int32Array(start.stop);
  const window = start.aggregateWindowMs;
  const pending = new Map<string, Pending>();
  let batch: AccessEvent[] = [];
  let offset = 0n;

  const refreshOffset = (): void => {
    const { realtimeNs, boottimeNs } = monotonicClocks();
    offset = realtimeNs - boottimeNs;
  };
  const flushExpired = (all: boolean): void => {
    const now = performance.now();
    for (const [key, p] of pending) {
      if (!all && now - p.startMs < window) continue;
      if (p.last && p.repeats > 0) batch.push({ ...p.last, count: p.repeats });
      pending.delete(key);
    }
  };
  const onEvent = (event: AccessEvent): void => {
    if (window <= 0) {
      batch.push(event);
      return;
    }
    const key = `${event.tgid}/${event.trapId}/${event.mask}/${event.blocked}`;
    const now = performance.now();
    const p = pending.get(key);
    if (p && now - p.startMs < window) {
      p.repeats++;
      p.last = event;
      return;
    }
    if (p && p.last && p.repeats > 0) batch.push({ ...p.last, count: p.repeats });
    pending.set(key, { startMs: now, last: null, repeats: 0 });
    batch.push(event);
  };

  let rb: RingBuffer;
  try {
    refreshOffset();
    rb = new RingBuffer(start.ringFd, (data) => {
      const event = decodeTrapEvent(data, offset);
      if (event) onEvent(event);
    });
  } catch (error) {
    const e = error as { message?: string; op?: string; errno?: number };
    post({ type: "error", message: String(e.message ?? error), op: e.op, errno: e.errno });
    return;
  }

  const cpus = possibleCpus();
  const zeroKey = new Uint8Array(4);
  const lostValue = new Uint8Array(8 * cpus);
  const lostView = new DataView(lostValue.buffer);
  let lostSeen = 0n;
  const checkLost = (): void => {
    if (!lookupElem(start.lostFd, zeroKey, lostValue)) return;
    let total = 0n;
    for (let i = 0; i < cpus; i++) total += lostView.getBigUint64(i * 8, true);
    if (total !== lostSeen) {
      lostSeen = total;
      post({ type: "lost", total });
    }
  };
  const flushBatch = (): void => {
    if (batch.length === 0) return;
    post({ type: "events", events: batch });
    batch = [];
  };

  post({ type: "ready" });
  try {
    while (Atomics.load(stop, 0) === 0) {
      refreshOffset();
      rb.poll(start.pollMs);
      if (window > 0) flushExpired(false);
      flushBatch();
      checkLost();
    }
    rb.consume();
    flushExpired(true);
    flushBatch();
    checkLost();
  } catch (error) {
    const e = error as { message?: string; op?: string; errno?: number };
    post({ type: "error", message: String(e.message ?? error), op: e.op, errno: e.errno });
  } finally {
    rb.close();
    post({ type: "stopped" });
  }
}

self.onmessage = (event: MessageEvent<StartMessage>) => {
  if (event.data?.type === "start") run(event.data);
};
