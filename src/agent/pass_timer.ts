/**
 * When the next reconcile pass runs: bursts of requests collapse into one pass, and a pass
 * already due is never pushed later, so a steady stream of events (a busy pod list, a
 * container renaming its trap over and over) cannot postpone it forever.
 *
 * @module
 */

/** Schedules one pending run of a callback. */
export class PassTimer {
  readonly #run: () => void;
  #timer?: ReturnType<typeof setTimeout>;
  #due = 0;

  /** @param run What to run when the timer fires. */
  constructor(run: () => void) {
    this.#run = run;
  }

  /**
   * Runs the callback in `delayMs`, or earlier if a run is already due earlier.
   *
   * @param delayMs Milliseconds from now.
   */
  schedule(delayMs: number): void {
    const due = Date.now() + delayMs;
    if (this.#timer !== undefined && this.#due <= due) return;
    clearTimeout(this.#timer);
    this.#due = due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#run();
    }, delayMs);
  }

  /** Drops the pending run, if any. */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
