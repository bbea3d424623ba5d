/**
 * What `/readyz` and `/healthz` answer, as pure functions of what the agent reports, plus the
 * small monitor that samples the agent for them.
 *
 * - Ready (`/readyz`, the readiness probe; it gates the webhook Service, which has
 *   `failurePolicy: Fail`): every watch has listed once, the agent knows who leads its kernel
 *   (itself, or a holder whose Lease has not expired) and, where this process serves webhooks,
 *   their TLS certificate is loaded.
 * - Live (`/healthz`, the liveness probe): the reconcile loop is not stuck in one pass and runs
 *   at least every few resync periods, and while leading, the event reader's loop still turns.
 *   A wedged JavaScript event loop answers nothing at all, which the probe counts as a failure.
 *
 * @module
 */

/** What the agent reports for its health, sampled at each probe. */
export interface HealthReport {
  /** Milliseconds since the epoch (a fake clock in tests). */
  now: number;
  /** Each watch by name and whether it has listed once. */
  watches: { name: string; synced: boolean }[];
  /** Whether this agent leads its kernel or knows an unexpired holder. */
  leaderKnown: boolean;
  /** Whether the webhook TLS is up; `undefined` when this process serves no webhook. */
  webhookReady?: boolean;
  /** When the running reconcile pass started, if one is running. */
  reconcileStartedAt?: number;
  /** When the last reconcile pass ended; `undefined` before the first one. */
  reconcileEndedAt?: number;
  /**
   * When the agent's reconcile loop started (after the first lists); `undefined` while it is
   * still waiting for the API server, which is not a stall: a restart would not help.
   */
  startedAt?: number;
  /** While leading: when the event reader's heartbeat last moved; `undefined` otherwise. */
  readerMovedAt?: number;
}

/** A probe's verdict and, when it fails, why (the probe's response body). */
export interface HealthVerdict {
  ok: boolean;
  reasons: string[];
}

/** Limits of {@linkcode liveness}. */
export interface LivenessLimits {
  /** Longest a reconcile pass may run, or the loop go without one. Default 120 s. */
  reconcileStallSeconds?: number;
  /** Longest the event reader's heartbeat may stand still while leading. Default 30 s. */
  readerStallSeconds?: number;
}

/**
 * Readiness: watches synced, kernel leader known, webhook TLS up where served.
 *
 * @param report What the agent reports.
 * @returns The verdict, with a reason per unmet condition.
 */
export function readiness(report: HealthReport): HealthVerdict {
  const reasons: string[] = [];
  for (const watch of report.watches) {
    if (!watch.synced) reasons.push(`watch ${watch.name} has not listed yet`);
  }
  if (!report.leaderKnown) reasons.push("no known leader for this node's kernel");
  if (report.webhookReady === false) reasons.push("webhook TLS certificate not loaded");
  return { ok: reasons.length === 0, reasons };
}

/**
 * Liveness: the reconcile loop and, while leading, the event reader still make progress.
 *
 * @param report What the agent reports.
 * @param limits How long each may stand still.
 * @returns The verdict, with a reason per stalled part.
 */
export function liveness(report: HealthReport, limits: LivenessLimits = {}): HealthVerdict {
  const reconcileMs = (limits.reconcileStallSeconds ?? 120) * 1000;
  const readerMs = (limits.readerStallSeconds ?? 30) * 1000;
  const reasons: string[] = [];
  const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;
  if (report.reconcileStartedAt !== undefined) {
    const running = report.now - report.reconcileStartedAt;
    if (running > reconcileMs) reasons.push(`a reconcile pass has run for ${seconds(running)}`);
  } else if (report.startedAt !== undefined) {
    const since = report.now - (report.reconcileEndedAt ?? report.startedAt);
    if (since > reconcileMs) reasons.push(`no reconcile pass for ${seconds(since)}`);
  }
  if (report.readerMovedAt !== undefined) {
    const still = report.now - report.readerMovedAt;
    if (still > readerMs) reasons.push(`the event reader has not turned for ${seconds(still)}`);
  }
  return { ok: reasons.length === 0, reasons };
}

/**
 * Turns a counter that should keep moving into "when it last moved", sampled at each probe and
 * by a timer (so a probe long after the last one does not mistake the gap for a stall).
 */
export class HeartbeatTracker {
  #value?: number;
  #movedAt?: number;

  /**
   * Records a sample.
   *
   * @param value The counter now, or `undefined` when there is nothing to watch (not leading).
   * @param now The time of the sample.
   * @returns When the counter last moved, or `undefined` when there is nothing to watch.
   */
  sample(value: number | undefined, now: number): number | undefined {
    if (value === undefined) {
      this.#value = this.#movedAt = undefined;
      return undefined;
    }
    if (value !== this.#value || this.#movedAt === undefined) {
      this.#value = value;
      this.#movedAt = now;
    }
    return this.#movedAt;
  }
}
