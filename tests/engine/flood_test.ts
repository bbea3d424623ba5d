import assert from "node:assert/strict";
import { type LostNotice, openEngine } from "../../src/engine/mod.ts";
import { bpfObjectPath, buildC } from "../bpf/_object.ts";
import { OPENER_C } from "./_c_programs.ts";
import {
  Collector,
  requestedBackend,
  run,
  sleep,
  tempDir,
  withEngine,
  writeFile,
} from "./_fixtures.ts";

const PROCESSES = 4;
const PER_PROCESS = 250_000;
const TOTAL = PROCESSES * PER_PROCESS;

const CASES = [
  { name: "with aggregation", ringBufferBytes: 4096, aggregateWindowMs: 50 },
  { name: "without aggregation", ringBufferBytes: 65536, aggregateWindowMs: 0 },
];

for (const flood of CASES) {
  Deno.test(`one million accesses from several processes are each delivered or counted lost (${flood.name})`, async () => {
    const bin = await buildC("opener", OPENER_C);
    await using dir = await tempDir();
    const trap = `${dir.path}/secret.txt`;
    await writeFile(trap);
    await withEngine(async (engine, events) => {
      engine.armPath(trap, 301);
      const results = await Promise.all(
        Array.from({ length: PROCESSES }, () => run([bin, trap, String(PER_PROCESS)])),
      );
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const pids = new Set(results.map((r) => r.pid));

      const deadline = Date.now() + 60_000;
      let c = engine.counters();
      while (c.accesses + c.lost < TOTAL && Date.now() < deadline) {
        await sleep(100);
        c = engine.counters();
      }
      await sleep(500); // anything more would be a double count
      c = engine.counters();
      assert.equal(
        c.accesses + c.lost,
        TOTAL,
        JSON.stringify({ ...c, lostByTrap: [...c.lostByTrap] }),
      );
      assert.equal(c.lostByTrap.get(301), c.lost);
      assert.equal(c.lostInUserSpace, 0, "the reader paused instead of dropping in user space");
      assert.ok(c.lost > 0, "the small ring buffer overflowed");
      if (flood.aggregateWindowMs > 0) assert.ok(c.aggregated > 0, "repeats were merged");
      else assert.equal(c.aggregated, 0);

      const accesses = events.accesses(301);
      assert.equal(accesses.length, c.events);
      assert.equal(accesses.reduce((n, e) => n + e.count, 0), c.accesses);
      for (const e of accesses) assert.ok(pids.has(e.tgid), `event from flood process ${e.tgid}`);
      const noticed = events.events
        .filter((e): e is LostNotice => e.kind === "lost" && e.trapId === 301)
        .reduce((n, e) => n + e.count, 0);
      assert.equal(noticed, c.lost, "lost notices in the stream add up to the counter");
    }, { ringBufferBytes: flood.ringBufferBytes, aggregateWindowMs: flood.aggregateWindowMs });
  });
}

Deno.test("a consumer that does not read pauses the reader: the overflow stays in the kernel, counted", async () => {
  const bin = await buildC("opener", OPENER_C);
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  const engine = await openEngine({
    backend: requestedBackend(),
    objectPath: await bpfObjectPath(),
    pollIntervalMs: 20,
    ringBufferBytes: 65536,
  });
  try {
    engine.armPath(trap, 302);
    const total = 200_000;
    assert.equal((await run([bin, trap, String(total)])).code, 0);
    await sleep(300);
    const idle = engine.counters();
    assert.equal(idle.events, 0, "nothing read yet");
    assert.ok(idle.lost > total / 2, `the kernel counted the overflow: ${idle.lost}`);
    assert.equal(idle.lostInUserSpace, 0);

    const events = new Collector(engine); // the consumer starts late
    const deadline = Date.now() + 30_000;
    let c = engine.counters();
    while (c.accesses + c.lost < total && Date.now() < deadline) {
      await sleep(50);
      c = engine.counters();
    }
    await sleep(300);
    c = engine.counters();
    assert.equal(
      c.accesses + c.lost,
      total,
      JSON.stringify({ ...c, lostByTrap: [...c.lostByTrap] }),
    );
    assert.equal(c.lostInUserSpace, 0);
    // At most a few batches and one ring buffer's worth were read while nobody consumed.
    assert.ok(c.events < 10_000, `events read ahead of the consumer: ${c.events}`);
    assert.equal(events.accesses(302).length, c.events);
  } finally {
    await engine.close();
  }
});
