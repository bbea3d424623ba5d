import assert from "node:assert/strict";
import { BackendError, BACKENDS, MAY_OPEN, MAY_READ, openEngine } from "../../src/engine/mod.ts";
import { bpfObjectPath } from "../bpf/_object.ts";
import { bpfFds } from "../bpf/_fdinfo.ts";
import { requestedBackend, run, sleep, tempDir, withEngine, writeFile } from "./_fixtures.ts";

Deno.test("openEngine() picks the first backend that loads and says why earlier ones failed", async () => {
  await withEngine((engine) => {
    if (requestedBackend() === "auto") {
      const tried = engine.attempts.map((a) => a.backend);
      assert.deepEqual(tried, BACKENDS.slice(0, BACKENDS.indexOf(engine.backend)));
      for (const a of engine.attempts) assert.match(a.reason, /\(errno \d+\)$/);
    } else {
      assert.equal(engine.backend, requestedBackend());
      assert.deepEqual(engine.attempts, []);
    }
    assert.equal(engine.counters().backend, engine.backend);
  });
});

Deno.test("openEngine({ backend }) names the backend and the reason when the kernel refuses it", async () => {
  const objectPath = await bpfObjectPath();
  // What automatic mode found unusable must fail the same way when forced.
  const auto = await openEngine({ objectPath });
  const refused = auto.attempts.map((a) => a.backend);
  await auto.close();
  for (const backend of BACKENDS) {
    if (!refused.includes(backend)) continue;
    await assert.rejects(
      () => openEngine({ backend, objectPath }),
      (error: unknown) => {
        assert.ok(error instanceof BackendError);
        assert.equal(error.backend, backend);
        assert.match(
          error.message,
          new RegExp(`^Cannot use BPF backend "${backend}": .+ \\(errno \\d+\\)$`),
        );
        assert.equal(error.attempts.length, 1);
        return true;
      },
    );
  }
  await assert.rejects(
    () => openEngine({ backend: "nope" as "lsm", objectPath }),
    TypeError,
  );
});

Deno.test("a file that is not armed yields nothing, disarm stops events, the agent is ignored", async () => {
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  const other = `${dir.path}/other.txt`;
  await writeFile(trap);
  await writeFile(other);
  await withEngine(async (engine, events) => {
    const key = engine.armPath(trap, 201);
    assert.equal((await run(["cat", other])).code, 0);
    await Deno.readTextFile(trap); // the agent itself
    await sleep(300);
    assert.deepEqual(events.events, [], "neither the unarmed file nor the agent's read");

    assert.equal((await run(["cat", trap])).code, 0);
    assert.equal((await events.waitFor(201, 1)).length, 1);

    assert.equal(engine.disarm(key), true);
    assert.equal(engine.disarm(key), false);
    assert.equal((await run(["cat", trap])).code, 0);
    await sleep(300);
    assert.equal(events.accesses(201).length, 1, "no event after disarm");
    assert.equal(engine.counters().armed, 0);
  });
});

Deno.test("arm() validates keys and ids; re-arming replaces the trap id", async () => {
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  await withEngine(async (engine, events) => {
    assert.throws(() => engine.arm({ dev: -1, ino: 1n }, 1), RangeError);
    assert.throws(() => engine.arm({ dev: 1, ino: 1 as unknown as bigint }, 1), RangeError);
    assert.throws(() => engine.arm({ dev: 1, ino: 1n }, 2 ** 32), RangeError);
    const key = engine.armPath(trap, 202);
    engine.arm(key, 203);
    assert.deepEqual(engine.armed(), [{ key, trapId: 203, block: false }]);
    assert.equal((await run(["cat", trap])).code, 0);
    const got = await events.waitFor(203, 1);
    assert.equal(got.length, 1);
    assert.equal(events.accesses(202).length, 0);
  });
});

Deno.test({
  name: "block denies the open with EPERM and still reports it (lsm backend only)",
  async fn() {
    await using dir = await tempDir();
    const trap = `${dir.path}/secret.txt`;
    await writeFile(trap);
    await withEngine(async (engine, events) => {
      if (engine.backend !== "lsm") {
        assert.throws(
          () => engine.armPath(trap, 204, { block: true }),
          /The block action needs the lsm backend; this engine uses "/,
        );
        console.warn(`block not exercised: the ${engine.backend} backend cannot deny opens`);
        return;
      }
      engine.armPath(trap, 204, { block: true });
      const p = await run(["cat", trap]);
      assert.notEqual(p.code, 0);
      assert.match(p.stderr, /Operation not permitted/);
      const got = await events.waitFor(204, 1);
      assert.equal(got.length, 1);
      assert.equal(got[0].blocked, true);
      assert.equal(got[0].mask, MAY_OPEN | MAY_READ);
      assert.equal(got[0].tgid, p.pid);
    });
  },
});

Deno.test("close() detaches every link, closes the maps and ends the event stream", async () => {
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  const before = bpfFds();
  await withEngine((engine) => {
    engine.armPath(trap, 205);
    const during = bpfFds();
    assert.equal(engine.linkFds.length, engine.programs.length, "one link per program");
    assert.ok(engine.programs.includes("trap_exec"));
    for (const fd of engine.linkFds) assert.ok(during.links.includes(fd), `link fd ${fd}`);
    assert.ok(during.maps.includes(engine.trapMapFd), "trap map fd");
  });
  assert.deepEqual(bpfFds(), before, "no BPF link, map or program fd left");
});

Deno.test("close() is idempotent and later calls throw TypeError", async () => {
  const engine = await openEngine({
    backend: requestedBackend(),
    objectPath: await bpfObjectPath(),
  });
  const events = engine.events();
  const next = events.next();
  await Promise.all([engine.close(), engine.close()]);
  assert.deepEqual(await next, { done: true, value: undefined });
  assert.equal(engine.closed, true);
  assert.throws(() => engine.arm({ dev: 1, ino: 1n }, 1), TypeError);
  assert.equal(engine.counters().events, 0);
});

Deno.test("readerBeats advances while the event reader runs and stops once it is closed", async () => {
  const engine = await openEngine({
    backend: requestedBackend(),
    objectPath: await bpfObjectPath(),
  });
  const first = engine.readerBeats;
  // The reader turns at least once per poll timeout even with no event at all.
  await waitUntil(() => engine.readerBeats > first + 2, 10_000);
  await engine.close();
  const closed = engine.readerBeats;
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(engine.readerBeats, closed);
});

async function waitUntil(probe: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`not reached within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
