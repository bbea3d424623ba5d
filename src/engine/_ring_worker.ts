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
 * Flow control: the worker adds 1 to the shared credit counter for each `events`
 * batch it posts, and the engine subtracts 1 once its consumer has taken the whole
 * batch. While `maxOutstanding` batches are out, the worker stops reading the ring
 * buffer (it waits on the counter), so a slow consumer leaves the overflow in the
 * kernel, which counts it per trap, instead of piling it up in memory.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { lookupElem, monotonicClocks, RingBuffer } from "../bpf/mod.ts";
import { decodeTrapEvent, TRAP_EVENT_HEADER } from "./_structs.ts";
import type { AccessEvent } from "./types.ts";

/** The engine's first message. */
export interface StartMessage {
  type: "start";
  /** fd of the `events` ring buffer map (fds are shared by the process's threads). */
  ringFd: number;
  /** fd of the `lost_counts` array. */
  lostFd: number;
  /** Longest wait in ring_buffer__poll (ms): also how late a stop is seen. */
  pollMs: number;
  /** Merge repeats by the same process to the same trap within this window (0: never). */
  aggregateWindowMs: number;
  /** Int32Array: [0] non-zero asks the worker to drain, free and stop; [1] counts loop turns. */
  stop: SharedArrayBuffer;
  /** Int32Array counter: `events` batches posted and not yet taken by the consumer. */
  credit: SharedArrayBuffer;
  /** Batches that may be out before the worker pauses. */
  maxOutstanding: number;
  /** Largest batch (events). */
  batchMax: number;
  /** The ring buffer's size: bounds the final drain. */
  ringBufferBytes: number;
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
  const credit = new Int32Array(start.credit);
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
      return batch.length >= start.batchMax ? RingBuffer.STOP : 0;
    });
  } catch (error) {
    const e = error as { message?: string; op?: string; errno?: number };
    post({ type: "error", message: String(e.message ?? error), op: e.op, errno: e.errno });
    return;
  }

  const zeroKey = new Uint8Array(4);
  const lostValue = new Uint8Array(8);
  const lostView = new DataView(lostValue.buffer);
  let lostSeen = 0n;
  const checkLost = (): void => {
    if (!lookupElem(start.lostFd, zeroKey, lostValue)) return;
    const total = lostView.getBigUint64(0, true);
    if (total !== lostSeen) {
      lostSeen = total;
      post({ type: "lost", total });
    }
  };
  const flushBatch = (): void => {
    if (batch.length === 0) return;
    Atomics.add(credit, 0, 1);
    post({ type: "events", events: batch });
    batch = [];
  };

  post({ type: "ready" });
  try {
    // Whether the last read stopped at batchMax with records left: read on without waiting.
    let more = false;
    while (Atomics.load(stop, 0) === 0) {
      Atomics.add(stop, 1, 1); // heartbeat: the engine's readerBeats
      const out = Atomics.load(credit, 0);
      if (out >= start.maxOutstanding) {
        // The consumer is behind: leave the records in the kernel (it counts overflow).
        Atomics.wait(credit, 0, out, start.pollMs);
        checkLost();
        continue;
      }
      refreshOffset();
      const n: number = more ? rb.consume() : rb.poll(start.pollMs);
      more = n > 0 && batch.length >= start.batchMax;
      if (window > 0) flushExpired(false);
      flushBatch();
      checkLost();
    }
    // Drain what is there now (bounded: producers may still be writing), whatever the credit;
    // unless the ring is pinned for a successor (stop value 2), who reads the rest.
    const rounds = Math.ceil(start.ringBufferBytes / TRAP_EVENT_HEADER / start.batchMax) + 1;
    refreshOffset();
    const drain = Atomics.load(stop, 0) === 1;
    for (let i = 0; drain && i < rounds && rb.consume() > 0; i++) flushBatch();
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
