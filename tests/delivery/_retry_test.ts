import assert from "node:assert/strict";
import { backoffDelay, parseRetryAfter, sleep } from "../../src/delivery/_retry.ts";

Deno.test("backoffDelay() doubles from the initial delay up to the cap, with jitter in [0.5, 1)", () => {
  const options = { initialMs: 200, maxMs: 30_000 };
  const table: [number, number][] = [[1, 200], [2, 400], [3, 800], [8, 25_600], [9, 30_000], [
    1000,
    30_000,
  ]];
  for (const [retry, base] of table) {
    assert.equal(backoffDelay(retry, { ...options, random: () => 0 }), base / 2, `retry ${retry}`);
    assert.equal(backoffDelay(retry, { ...options, random: () => 1 }), base, `retry ${retry}`);
  }
});

Deno.test("parseRetryAfter() reads seconds and HTTP dates", () => {
  const now = Date.parse("Sat, 02 Aug 2025 16:51:19 GMT");
  const table: [string | null, number | undefined][] = [
    [null, undefined],
    ["0", 0],
    [" 3 ", 3000],
    ["Sat, 02 Aug 2025 16:51:29 GMT", 10_000],
    ["Sat, 02 Aug 2025 16:51:00 GMT", 0],
    ["soon", undefined],
    ["-1", undefined],
  ];
  for (const [value, expected] of table) {
    assert.equal(parseRetryAfter(value, now), expected, value ?? "null");
  }
});

Deno.test("sleep() ends early when its signal aborts and leaves no timer", async () => {
  const controller = new AbortController();
  const waiting = sleep(60_000, controller.signal);
  controller.abort();
  await waiting;
  await sleep(1, AbortSignal.abort());
});
