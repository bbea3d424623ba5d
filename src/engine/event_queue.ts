/**
 * The engine's event queue between the ring-buffer reader Worker and the one consumer of
 * {@linkcode TrapEngine.events}: batches posted by the Worker are queued in arrival order, and
 * flow control is a shared credit counter (batches posted and not yet fully taken) that the
 * Worker waits on, so it never runs further ahead than the queue allows. Accesses beyond the
 * queue's bound are not dropped silently: they are counted per trap and become lost notices.
 *
 * @module
 */
import type { AccessEvent, EngineEvent, LostNotice } from "./types.ts";

/** What ends or breaks the stream, asked each time the queue runs empty. */
export interface StreamState {
  /** The reader failed: the stream throws it. */
  error: Error | null;
  /** The engine is closing: the stream ends once the queue is empty. */
  ended: boolean;
}

/** Queued events, the Worker's credit and the counts of what was taken or lost. */
export class EventQueue {
  /** Int32Array [0]: batches the Worker posted that the consumer has not finished taking. */
  readonly credit = new SharedArrayBuffer(4);
  readonly #maxQueued: number;
  #queue: EngineEvent[] = [];
  #head = 0;
  /** Entries ever put into / taken from #queue, and where each unfinished batch ends. */
  #queuedTotal = 0;
  #takenTotal = 0;
  #batchEnds: number[] = [];
  #wake: (() => void) | null = null;
  #iterating = false;
  readonly #userLost = new Map<number, number>();
  readonly #userLostPending = new Map<number, number>();
  #events = 0;
  #accesses = 0;

  /** @param maxQueued Events held at most; accesses beyond are counted lost. */
  constructor(maxQueued: number) {
    this.#maxQueued = maxQueued;
  }

  /** Events held at most. */
  get capacity(): number {
    return this.#maxQueued;
  }

  /** Events delivered to the consumer. */
  get events(): number {
    return this.#events;
  }

  /** Accesses those events stand for (an aggregated event counts several). */
  get accesses(): number {
    return this.#accesses;
  }

  /** Accesses lost because the queue was full, by trap id. */
  get lostInUserSpace(): ReadonlyMap<number, number> {
    return this.#userLost;
  }

  /**
   * Queues one batch the Worker posted; its credit returns once the consumer took all of it.
   *
   * @param events The batch, in ring order.
   */
  takeBatch(events: AccessEvent[]): void {
    for (const event of events) {
      if (this.#queue.length - this.#head >= this.#maxQueued) {
        this.#userLost.set(event.trapId, (this.#userLost.get(event.trapId) ?? 0) + event.count);
        this.#userLostPending.set(
          event.trapId,
          (this.#userLostPending.get(event.trapId) ?? 0) + event.count,
        );
        continue;
      }
      this.push(event);
    }
    const end = this.#queuedTotal;
    if (end <= this.#takenTotal) this.#releaseBatch();
    else this.#batchEnds.push(end);
  }

  /** Queues one event or notice outside any batch (lost notices). */
  push(event: EngineEvent): void {
    this.#queue.push(event);
    this.#queuedTotal++;
    this.notify();
  }

  /** Wakes a consumer waiting on an empty queue (to see an error or the end). */
  notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /**
   * The stream: one consumer only.
   *
   * @param state Asked whenever the queue is empty: an error to throw, or whether to end.
   * @throws {TypeError} when a second consumer asks for it
   */
  stream(state: () => StreamState): AsyncIterableIterator<EngineEvent> {
    if (this.#iterating) throw new TypeError("The trap engine's events are already being read");
    this.#iterating = true;
    return this.#iterate(state);
  }

  async *#iterate(state: () => StreamState): AsyncIterableIterator<EngineEvent> {
    try {
      for (;;) {
        const event = this.#shift();
        if (event) {
          yield event;
          continue;
        }
        const { error, ended } = state();
        if (error) throw error;
        if (ended) return;
        await new Promise<void>((resolve) => this.#wake = resolve);
      }
    } finally {
      this.#iterating = false;
    }
  }

  /** The consumer took the last entry of a batch: the Worker may post one more. */
  #releaseBatch(): void {
    const credit = new Int32Array(this.credit);
    Atomics.sub(credit, 0, 1);
    Atomics.notify(credit, 0);
  }

  #shift(): EngineEvent | undefined {
    if (this.#head >= this.#queue.length) {
      for (const [trapId, count] of this.#userLostPending) {
        this.#queue.push({ kind: "lost", trapId, count } satisfies LostNotice);
        this.#queuedTotal++;
      }
      this.#userLostPending.clear();
      if (this.#head >= this.#queue.length) return undefined;
    }
    const event = this.#queue[this.#head++];
    this.#takenTotal++;
    while (this.#batchEnds.length > 0 && this.#batchEnds[0] <= this.#takenTotal) {
      this.#batchEnds.shift();
      this.#releaseBatch();
    }
    if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (event.kind === "access") {
      this.#events++;
      this.#accesses += event.count;
    }
    return event;
  }
}
