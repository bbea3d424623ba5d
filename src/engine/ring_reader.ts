/**
 * The main-thread side of the ring-buffer reader Worker (`_ring_worker.ts`): starting it with
 * the maps' fds and the shared flow-control and stop words, routing its messages, and stopping
 * it (draining the ring, or leaving it to a successor when the maps are pinned).
 *
 * @module
 */
import { BpfError } from "../bpf/mod.ts";
import type { StartMessage, WorkerMessage } from "./_ring_worker.ts";
import type { AccessEvent } from "./types.ts";

/** Waited at most for the Worker to stop before it is terminated. */
const STOP_TIMEOUT_MS = 5000;

/** Where the reader's news goes. */
export interface RingReaderHooks {
  /** A batch of events (its credit is returned by the queue). */
  onEvents(events: AccessEvent[]): void;
  /** The kernel counted losses: read the lost counters. */
  onLost(): void;
  /** The reader failed or crashed; it reads no more. */
  onError(error: Error): void;
}

/** What the Worker reads and how. */
export type RingReaderStart = Omit<StartMessage, "type" | "stop">;

/** The running reader Worker. */
export class RingReader {
  /** Int32Array [0]: the stop request; [1]: the Worker's loop turns (its heartbeat). */
  readonly #stop = new SharedArrayBuffer(8);
  #worker: Worker | null = null;
  #stopped: Promise<void> = Promise.resolve();

  /** Loop turns of the Worker: a value that stops moving means it is wedged. */
  get beats(): number {
    return Atomics.load(new Int32Array(this.#stop), 1);
  }

  /**
   * Starts the Worker.
   *
   * @param start The fds, limits and shared credit word.
   * @param hooks Where events, loss news and failures go.
   * @returns Resolves once the Worker reads the ring buffer; rejects if it cannot.
   */
  start(start: RingReaderStart, hooks: RingReaderHooks): Promise<void> {
    const worker = new Worker(new URL("./_ring_worker.ts", import.meta.url).href, {
      type: "module",
    });
    this.#worker = worker;
    let ready: (value: void) => void;
    let failed: (error: Error) => void;
    const started = new Promise<void>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    let stopped: () => void;
    this.#stopped = new Promise<void>((resolve) => stopped = resolve);
    worker.onmessage = (message: MessageEvent<WorkerMessage>) => {
      const m = message.data;
      switch (m.type) {
        case "ready":
          ready();
          break;
        case "events":
          hooks.onEvents(m.events);
          break;
        case "lost":
          hooks.onLost();
          break;
        case "error": {
          const error = m.op && m.errno !== undefined
            ? new BpfError(m.op, m.errno, "The ring buffer reader failed")
            : new Error(`The ring buffer reader failed: ${m.message}`);
          failed(error);
          hooks.onError(error);
          break;
        }
        case "stopped":
          stopped();
          break;
      }
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      const error = new Error(`The ring buffer reader crashed: ${event.message}`);
      failed(error);
      stopped();
      hooks.onError(error);
    };
    worker.postMessage({ type: "start", stop: this.#stop, ...start } satisfies StartMessage);
    return started;
  }

  /**
   * Stops the Worker: it drains the ring first, unless `keepRing` (pinned maps: what is left
   * stays for the engine that adopts them; read now, it would be lost with this process).
   *
   * @param credit The shared credit word, to wake a Worker paused on it.
   * @param keepRing Leave the ring's contents in the kernel.
   */
  async stop(credit: SharedArrayBuffer, keepRing: boolean): Promise<void> {
    if (!this.#worker) return;
    Atomics.store(new Int32Array(this.#stop), 0, keepRing ? 2 : 1);
    Atomics.notify(new Int32Array(credit), 0); // a paused Worker sees the stop at once
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, STOP_TIMEOUT_MS);
    });
    await Promise.race([this.#stopped, timeout]);
    clearTimeout(timer);
    this.#worker.terminate();
    this.#worker = null;
  }
}
