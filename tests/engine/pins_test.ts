/**
 * Traps that outlive the engine: pinned programs keep reporting into the pinned ring buffer
 * and counters while no engine runs, and the next engine adopts them, delivering what
 * accumulated (or counting it lost) and keeping the armed traps. Each test mounts a bpffs of
 * its own, so nothing touches the host's /sys/fs/bpf.
 */
import assert from "node:assert/strict";
import {
  type EngineEvent,
  type EngineOptions,
  openEngine,
  type TrapEngine,
} from "../../src/engine/mod.ts";
import { bpfObjectPath, buildC } from "../bpf/_object.ts";
import { OPENER_C } from "./_c_programs.ts";
import { Collector, requestedBackend, run, sleep, tempDir, writeFile } from "./_fixtures.ts";

/** A fresh bpffs instance, unmounted by dispose. */
async function bpffs(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "kivebpf-bpffs-" });
  const mount = await run(["mount", "-t", "bpf", "bpf", path]);
  assert.equal(mount.code, 0, `mount -t bpf: ${mount.stderr}`);
  return {
    path,
    async [Symbol.asyncDispose]() {
      await run(["umount", path]);
      await Deno.remove(path);
    },
  };
}

function open(pinDir: string, options: EngineOptions = {}): Promise<TrapEngine> {
  return bpfObjectPath().then((objectPath) =>
    openEngine({ backend: requestedBackend(), objectPath, pollIntervalMs: 20, pinDir, ...options })
  );
}

/** Accesses of `trapId` the collector holds: delivered (summing merged counts) and lost. */
function tally(events: EngineEvent[], trapId: number): { delivered: number; lost: number } {
  let delivered = 0;
  let lost = 0;
  for (const e of events) {
    if (e.trapId !== trapId) continue;
    if (e.kind === "lost") lost += e.count;
    else delivered += e.count;
  }
  return { delivered, lost };
}

async function waitTally(c: Collector, trapId: number, total: number) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const t = tally(c.events, trapId);
    if (t.delivered + t.lost >= total) break;
    await sleep(20);
  }
  await sleep(300);
  return tally(c.events, trapId);
}

async function closeAll(engine: TrapEngine, collector: Collector): Promise<void> {
  await engine.close();
  await collector.finished();
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function dirs(path: string): string[] {
  return [...Deno.readDirSync(path)].map((e) => e.name).sort();
}

Deno.test("accesses while no engine runs are delivered by the engine that adopts the pins", async () => {
  await using fs = await bpffs();
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  const pinDir = `${fs.path}/kernel-a`;

  const first = await open(pinDir);
  assert.equal(first.pinError, undefined);
  assert.equal(first.pins?.adoptedMaps, false);
  const key = first.armPath(trap, 901);
  await first.close(); // keeps the pins: the programs stay attached

  for (let i = 0; i < 3; i++) assert.equal((await run(["cat", trap])).code, 0);

  const second = await open(pinDir);
  const events = new Collector(second);
  try {
    assert.equal(second.pins?.adoptedMaps, true);
    assert.equal(second.pins?.adoptedLinks, true);
    assert.deepEqual(second.armed(), [{ key, trapId: 901, block: false }]);
    assert.equal(second.counters().armed, 1);
    assert.deepEqual(await waitTally(events, 901, 3), { delivered: 3, lost: 0 });
    const cat = await run(["cat", trap]);
    const after = await waitTally(events, 901, 4);
    assert.deepEqual(after, { delivered: 4, lost: 0 }, "still armed after adoption");
    const last = events.events.at(-1);
    assert.equal(last?.kind === "access" && last.tgid, cat.pid);
    second.unpin();
  } finally {
    await closeAll(second, events);
  }
  assert.equal(exists(pinDir), false, "unpin() removed every pin");

  // Nothing of it is left: a new engine in the same place starts empty.
  const third = await open(pinDir);
  try {
    assert.equal(third.pins?.adoptedMaps, false);
    assert.deepEqual(third.armed(), []);
    third.unpin();
  } finally {
    await third.close();
  }
});

Deno.test("a ring buffer that overflowed while no engine ran: every access delivered or counted lost", async () => {
  const bin = await buildC("opener", OPENER_C);
  await using fs = await bpffs();
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  const pinDir = `${fs.path}/kernel-b`;
  const options = { ringBufferBytes: 4096 };
  const first = await open(pinDir, options);
  first.armPath(trap, 902);
  await first.close();

  const opens = 2000; // far more than 4 KiB of events
  assert.equal((await run([bin, trap, String(opens)])).code, 0);

  const second = await open(pinDir, options);
  const events = new Collector(second);
  try {
    assert.equal(second.pins?.adoptedMaps, true);
    const t = await waitTally(events, 902, opens);
    assert.ok(t.lost > 0, "the small ring overflowed");
    assert.equal(t.delivered + t.lost, opens, `delivered ${t.delivered} + lost ${t.lost}`);
    // A third engine must not report the same losses again.
    await closeAll(second, events);
    const third = await open(pinDir, options);
    const more = new Collector(third);
    try {
      await sleep(300);
      assert.deepEqual(tally(more.events, 902), { delivered: 0, lost: 0 });
      third.unpin();
    } finally {
      await closeAll(third, more);
    }
  } finally {
    await closeAll(second, events).catch(() => {});
  }
});

Deno.test("engines closed and adopted while accesses stream in: each access is delivered by one of them or counted lost", async () => {
  // Once the event stream ended as soon as close() began: the reader's last batch, already
  // taken from the ring, arrived after the consumer had stopped reading, and was lost.
  const bin = await buildC("opener", OPENER_C);
  await using fs = await bpffs();
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  const pinDir = `${fs.path}/kernel-stream`;
  const opens = 1_000_000;
  let engine = await open(pinDir);
  engine.armPath(trap, 903);
  const seen: EngineEvent[] = [];
  let collector = new Collector(engine);
  const opener = run([bin, trap, String(opens)]);
  let done = false;
  opener.then(() => done = true);
  let handovers = 0;
  for (let i = 0; i < 5; i++) {
    await sleep(30);
    if (!done) handovers++;
    await closeAll(engine, collector);
    seen.push(...collector.events);
    engine = await open(pinDir);
    collector = new Collector(engine);
  }
  assert.equal((await opener).code, 0);
  try {
    const deadline = Date.now() + 20_000;
    let t = tally([...seen, ...collector.events], 903);
    while (t.delivered + t.lost < opens && Date.now() < deadline) {
      await sleep(50);
      t = tally([...seen, ...collector.events], 903);
    }
    await sleep(300);
    t = tally([...seen, ...collector.events], 903);
    assert.ok(handovers >= 2, `handed over ${handovers} times while the accesses ran`);
    assert.equal(t.delivered + t.lost, opens, `delivered ${t.delivered} + lost ${t.lost}`);
    engine.unpin();
  } finally {
    await closeAll(engine, collector);
  }
});

Deno.test("an upgrade with new programs keeps the maps and replaces the links; a new layout starts over", async () => {
  await using fs = await bpffs();
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  const pinDir = `${fs.path}/kernel-c`;
  const first = await open(pinDir);
  first.armPath(trap, 903);
  const mapsDir = first.pins!.mapsDir;
  const oldLinks = first.pins!.linksDir;
  await first.close();
  assert.equal((await run(["cat", trap])).code, 0);

  // A different build of the same layout: trailing bytes change the file, not the ELF.
  const upgraded = `${dir.path}/trap-upgraded.bpf.o`;
  const bytes = await Deno.readFile(await bpfObjectPath());
  await Deno.writeFile(upgraded, new Uint8Array([...bytes, 0]));
  const second = await openEngine({
    backend: requestedBackend(),
    objectPath: upgraded,
    pollIntervalMs: 20,
    pinDir,
  });
  const events = new Collector(second);
  try {
    assert.equal(second.pins?.adoptedMaps, true);
    assert.equal(second.pins?.adoptedLinks, false);
    assert.equal(second.pins?.mapsDir, mapsDir);
    assert.notEqual(second.pins?.linksDir, oldLinks);
    assert.deepEqual(dirs(mapsDir).filter((n) => n.startsWith("links-")), [
      second.pins!.linksDir.split("/").pop(),
    ]);
    const t = await waitTally(events, 903, 1);
    assert.deepEqual(t, { delivered: 1, lost: 0 }, "the access made between the two");
    assert.equal((await run(["cat", trap])).code, 0);
    assert.deepEqual(await waitTally(events, 903, 2), { delivered: 2, lost: 0 }, "once, not twice");
  } finally {
    await closeAll(second, events);
  }

  const third = await open(pinDir, { maxTraps: 1024 }); // another map size: another layout
  try {
    assert.equal(third.pins?.adoptedMaps, false);
    assert.deepEqual(dirs(pinDir), [third.pins!.mapsDir.split("/").pop()], "old layout removed");
    third.unpin();
  } finally {
    await third.close();
  }
});

Deno.test("a pin directory outside bpffs leaves the engine working unpinned, with the reason", async () => {
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  const engine = await open(`${dir.path}/not-bpffs`);
  const events = new Collector(engine);
  try {
    assert.equal(engine.pins, undefined);
    assert.match(engine.pinError ?? "", /pin/i);
    engine.armPath(trap, 904);
    assert.equal((await run(["cat", trap])).code, 0);
    assert.deepEqual(await waitTally(events, 904, 1), { delivered: 1, lost: 0 });
  } finally {
    await closeAll(engine, events);
  }
});
