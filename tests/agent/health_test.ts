import assert from "node:assert/strict";
import {
  type HealthReport,
  HeartbeatTracker,
  liveness,
  readiness,
} from "../../src/agent/health.ts";

const T0 = 1_800_000_000_000;

function report(extra: Partial<HealthReport> = {}): HealthReport {
  return {
    now: T0,
    watches: [{ name: "kivepolicies", synced: true }, { name: "pods", synced: true }],
    leaderKnown: true,
    startedAt: T0 - 60_000,
    reconcileEndedAt: T0 - 1_000,
    ...extra,
  };
}

Deno.test("readiness() needs every watch listed, a known leader and webhook TLS where served", () => {
  assert.deepEqual(readiness(report()), { ok: true, reasons: [] });
  assert.deepEqual(readiness(report({ webhookReady: true })).ok, true);
  const verdict = readiness(report({
    watches: [{ name: "kivepolicies", synced: true }, { name: "pods", synced: false }],
    leaderKnown: false,
    webhookReady: false,
  }));
  assert.deepEqual(verdict, {
    ok: false,
    reasons: [
      "watch pods has not listed yet",
      "no known leader for this node's kernel",
      "webhook TLS certificate not loaded",
    ],
  });
});

Deno.test("liveness() fails on a stuck reconcile pass, a silent loop and a still event reader", () => {
  assert.equal(liveness(report()).ok, true);
  assert.deepEqual(liveness(report({ reconcileStartedAt: T0 - 121_000 })).reasons, [
    "a reconcile pass has run for 121 s",
  ]);
  assert.equal(liveness(report({ reconcileStartedAt: T0 - 30_000 })).ok, true);
  assert.deepEqual(liveness(report({ reconcileEndedAt: T0 - 200_000 })).reasons, [
    "no reconcile pass for 200 s",
  ]);
  assert.deepEqual(liveness(report({ readerMovedAt: T0 - 31_000 })).reasons, [
    "the event reader has not turned for 31 s",
  ]);
  assert.equal(liveness(report({ readerMovedAt: T0 - 5_000 })).ok, true);
  assert.equal(
    liveness(report({ readerMovedAt: T0 - 5_000 }), { readerStallSeconds: 2 }).ok,
    false,
  );
});

Deno.test("liveness() does not fail an agent still waiting for its first lists", () => {
  // Restarting it would not bring the API server back.
  const waiting = report({ startedAt: undefined, reconcileEndedAt: undefined });
  assert.equal(liveness({ ...waiting, now: T0 + 3_600_000 }).ok, true);
  assert.equal(readiness({ ...waiting, watches: [{ name: "pods", synced: false }] }).ok, false);
});

Deno.test("HeartbeatTracker reports when a counter last moved, and forgets when unwatched", () => {
  const beat = new HeartbeatTracker();
  assert.equal(beat.sample(5, T0), T0);
  assert.equal(beat.sample(5, T0 + 10_000), T0, "unchanged: still the first time");
  assert.equal(beat.sample(6, T0 + 20_000), T0 + 20_000);
  assert.equal(beat.sample(undefined, T0 + 30_000), undefined);
  assert.equal(beat.sample(6, T0 + 40_000), T0 + 40_000, "a new watch starts fresh");
});
