/**
 * Range checks of the engine's numeric options, and how far the reader Worker may run ahead.
 *
 * @module
 */

/** Batches the reader Worker may have posted and the consumer not yet taken before it pauses. */
const MAX_OUTSTANDING_BATCHES = 4;
/** Largest batch the Worker posts (events). */
const MAX_BATCH = 1024;

/**
 * Checks an integer option.
 *
 * @returns the value
 * @throws {RangeError} naming the option when it is not an integer in [min, max]
 */
export function positiveInt(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

/**
 * How far the reader Worker may run ahead of the consumer: at most `maxOutstanding`
 * posted batches of at most `batchMax` events not yet taken, which also keeps it
 * within `maxQueuedEvents`.
 */
export function readerLimits(maxQueued: number): { maxOutstanding: number; batchMax: number } {
  const maxOutstanding = Math.min(MAX_OUTSTANDING_BATCHES, maxQueued);
  const batchMax = Math.max(1, Math.min(MAX_BATCH, Math.floor(maxQueued / maxOutstanding)));
  return { maxOutstanding, batchMax };
}
