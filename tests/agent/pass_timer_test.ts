import assert from "node:assert/strict";
import { PassTimer } from "../../src/agent/pass_timer.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("PassTimer: a steady stream of requests does not postpone a pass that is due", async () => {
  // Once every new event re-armed a fresh 100 ms timer: events every 20 ms meant no pass at all.
  let runs = 0;
  const timer = new PassTimer(() => runs++);
  for (let i = 0; i < 25; i++) {
    timer.schedule(100);
    await sleep(20);
  }
  timer.cancel();
  assert.ok(runs >= 2, `passes ran during a 500 ms stream of requests (${runs})`);
});

Deno.test("PassTimer: a burst collapses into one pass, an earlier request wins, cancel() drops it", async () => {
  let runs = 0;
  const timer = new PassTimer(() => runs++);
  for (let i = 0; i < 10; i++) timer.schedule(30);
  await sleep(80);
  assert.equal(runs, 1, "one pass for the burst");
  timer.schedule(10_000);
  timer.schedule(20);
  await sleep(60);
  assert.equal(runs, 2, "the earlier request ran");
  timer.schedule(20);
  timer.cancel();
  await sleep(60);
  assert.equal(runs, 2, "cancelled");
});
