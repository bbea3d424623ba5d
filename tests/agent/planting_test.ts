import assert from "node:assert/strict";
import type { PlantResult, TrapPlanter } from "../../src/agent/agent_options.ts";
import type { TrapTarget } from "../../src/agent/desired.ts";
import { createLogger } from "../../src/agent/log.ts";
import { plantTargets } from "../../src/agent/planting.ts";
import {
  judgeChange,
  type TrapChange,
  type TrapSignals,
  type Verification,
} from "../../src/agent/trap_changes.ts";

/** Plants by answering from a script; counts calls. */
class ScriptedPlanter implements TrapPlanter {
  calls = 0;
  answer: PlantResult | Error = { ok: true, dev: 42, ino: "1001" };
  plant(_target: TrapTarget) {
    this.calls++;
    return this.answer instanceof Error
      ? Promise.reject(this.answer)
      : Promise.resolve(this.answer);
  }
}

function target(path = "/secret.txt"): TrapTarget {
  return {
    key: "uid/0/pod-uid/app/containerd://x",
    policy: { namespace: "ns", name: "p", uid: "uid", generation: 1 },
    alertVersion: "v1",
    trapIndex: 0,
    trap: { path, create: true, mode: 444, matchAny: [{ pod: "pod" }], action: "alert" } as never,
    pod: { namespace: "default", name: "pod", uid: "pod-uid" },
    container: { name: "app", id: "containerd://x" },
  };
}

Deno.test("plantTargets() trusts a recent plant, re-plants an edited trap and re-verifies old ones", async () => {
  const planter = new ScriptedPlanter();
  const lines: string[] = [];
  const options = {
    planter,
    log: createLogger("info", (line) => lines.push(line)),
    nodeName: "node-a",
    verifyMs: 60_000,
  };
  let state = await plantTargets(new Map(), [target()], options);
  const first = state.get(target().key)!;
  assert.equal(first.registration?.ino, "1001");
  assert.equal(first.registration?.node, "node-a");
  state = await plantTargets(state, [target()], options);
  assert.equal(planter.calls, 1, "an unchanged, recent plant is trusted");
  state = await plantTargets(state, [target("/other.txt")], options);
  assert.equal(planter.calls, 2, "an edited trap under the same key is planted again");
  state = await plantTargets(state, [target("/other.txt")], { ...options, verifyMs: 0 });
  assert.equal(planter.calls, 3, "an old plant is verified again");
  assert.equal(lines.filter((l) => l.includes("trap planted")).length, 1, "logged on change only");
});

Deno.test("plantTargets() keeps a planter's refusal or exception for that target only", async () => {
  const planter = new ScriptedPlanter();
  const options = { planter, log: createLogger("error", () => {}), nodeName: "n", verifyMs: 0 };
  planter.answer = { ok: false, reason: "PathIsSymlink", message: "a symlink" };
  let state = await plantTargets(new Map(), [target()], options);
  assert.deepEqual(
    [state.get(target().key)?.outcome.ok, state.get(target().key)?.registration],
    [false, undefined],
  );
  planter.answer = new Error("procfs vanished");
  state = await plantTargets(state, [target()], options);
  const outcome = state.get(target().key)!.outcome as { reason: string; message: string };
  assert.deepEqual([outcome.reason, outcome.message], ["Other", "procfs vanished"]);
});

/** A planter that also answers whether an inode is watched. */
class WatchingPlanter extends ScriptedPlanter {
  watched = new Set<string>();
  kept?: ReadonlyMap<string, ReadonlySet<string>>;
  watches(_key: string, ino: string) {
    return this.watched.has(ino);
  }
  keep(live: ReadonlyMap<string, ReadonlySet<string>>) {
    this.kept = live;
  }
}

const signalsOf = (key: string, s: Partial<TrapSignals>) =>
  new Map([[key, {
    path: true,
    attrib: new Set<string>(),
    moved: new Set<string>(),
    deleted: new Set<string>(),
    ...s,
  }]]);

/** A watching planter, the changes it reported, and plantTargets() options that record them. */
function watchedSetup() {
  const planter = new WatchingPlanter();
  const changes: TrapChange[] = [];
  const options = {
    planter,
    log: createLogger("error", () => {}),
    nodeName: "node-a",
    verifyMs: 3_600_000,
    onChange: (_t: TrapTarget, change: TrapChange) => changes.push(change),
  };
  return { planter, changes, options };
}

Deno.test("plantTargets() on a watch signal: a moved trap stays armed beside the new one, a deleted one is dropped, each change reported", async () => {
  const { planter, changes, options } = watchedSetup();
  const key = target().key;
  planter.answer = {
    ok: true,
    dev: 42,
    ino: "1001",
    created: true,
    mode: 0o444,
    uid: 0,
    gid: 0,
    nlink: 1,
  };
  planter.watched.add("1001");
  let state = await plantTargets(new Map(), [target()], options);
  assert.equal(changes.length, 0, "planting is not a change");

  // The container renamed the trap away: a new file is planted, the old inode stays armed.
  planter.answer = { ...planter.answer, ino: "2002" };
  planter.watched.add("2002");
  state = await plantTargets(state, [target()], {
    ...options,
    signals: signalsOf(key, { moved: new Set(["1001"]) }),
  });
  assert.equal(planter.calls, 2, "a signalled target is verified at once, however fresh");
  const moved = state.get(key)!;
  assert.equal(moved.registration?.ino, "2002");
  assert.deepEqual(moved.retained.map((r) => r.ino), ["1001"]);
  assert.deepEqual(changes.map((c) => c.kind), ["Moved"]);
  assert.deepEqual([...planter.kept!.get(key)!].sort(), ["1001", "2002"], "both stay watched");

  // Later the moved copy is deleted: it is no longer armed. (2002 is found, not created, now.)
  planter.answer = { ...planter.answer, created: false };
  planter.watched.delete("1001");
  state = await plantTargets(state, [target()], {
    ...options,
    signals: signalsOf(key, { path: false, deleted: new Set(["1001"]) }),
  });
  assert.deepEqual(state.get(key)!.retained, []);

  // A chmod of the trap keeps it armed and is reported.
  planter.answer = { ...planter.answer, mode: 0o777, created: false };
  state = await plantTargets(state, [target()], {
    ...options,
    signals: signalsOf(key, { attrib: new Set(["2002"]) }),
  });
  assert.equal(state.get(key)!.registration?.ino, "2002");
  assert.deepEqual(changes.map((c) => c.kind), ["Moved", "ModeChanged"]);

  // Removed and replaced by a symlink: not armed, nothing retained, reported.
  planter.watched.delete("2002");
  planter.answer = { ok: false, reason: "PathIsSymlink", message: "a symlink" };
  state = await plantTargets(state, [target()], {
    ...options,
    signals: signalsOf(key, { deleted: new Set(["2002"]) }),
  });
  assert.equal(state.get(key)!.registration, undefined);
  assert.deepEqual(state.get(key)!.retained, []);
  assert.deepEqual(changes.map((c) => c.kind), ["Moved", "ModeChanged", "ReplacedBySymlink"]);
  assert.equal(state.get(key)!.changes.length, 3, "the changes are kept for status");
});

Deno.test("plantTargets(): an unlink whose last-link signal has not arrived yet is still a removal, not a move", async () => {
  // Seen under load: the link count change and the name's deletion were read before the
  // inode's IN_DELETE_SELF, and the removal was reported as a move that stays armed.
  const { planter, changes, options } = watchedSetup();
  const key = target().key;
  planter.answer = { ok: true, dev: 42, ino: "1001", created: true, mode: 0o444, nlink: 1 };
  planter.watched.add("1001");
  let state = await plantTargets(new Map(), [target()], options);
  planter.answer = { ...planter.answer, ino: "2002" };
  state = await plantTargets(state, [target()], {
    ...options,
    signals: signalsOf(key, { attrib: new Set(["1001"]) }),
  });
  assert.deepEqual(changes.map((c) => c.kind), ["Removed"]);
  assert.deepEqual(state.get(key)!.retained, [], "the removed inode is not kept armed");
});

Deno.test("judgeChange() tells removal, replacement, a move, a symlink, a non-file and attribute changes apart", () => {
  const armed = { ino: "7", mode: 0o444, uid: 0, gid: 0, nlink: 1 };
  const same = (over: Partial<typeof armed>) => ({
    ok: true as const,
    file: { ...armed, ...over },
    created: false,
  });
  const fresh = { ok: true as const, file: { ...armed, ino: "8" }, created: true };
  const theirs = { ok: true as const, file: { ...armed, ino: "9" }, created: false };
  const rows: [Verification, boolean, string | undefined, boolean][] = [
    [same({}), false, undefined, false],
    [same({ mode: 0o600 }), false, "ModeChanged", false],
    [same({ uid: 1000 }), false, "OwnerChanged", false],
    [same({ nlink: 2 }), false, "Linked", false],
    [fresh, false, "Removed", false],
    [theirs, false, "Replaced", false],
    [fresh, true, "Moved", true],
    [{ ok: false, reason: "FileMissing" }, true, "Moved", true],
    [{ ok: false, reason: "FileMissing" }, false, "Removed", false],
    [{ ok: false, reason: "PathIsSymlink" }, false, "ReplacedBySymlink", false],
    [{ ok: false, reason: "NotARegularFile" }, false, "ReplacedByNonFile", false],
    [{ ok: false, reason: "ContainerGone" }, false, undefined, false],
  ];
  for (const [found, alive, kind, keep] of rows) {
    const verdict = judgeChange(armed, found, alive);
    assert.deepEqual(
      [verdict.change?.kind, verdict.keepOldArmed],
      [kind, keep],
      JSON.stringify({ found, alive }),
    );
  }
});

Deno.test("judgeChange() sees a new file behind a reused inode number (ext4 hands it to the next file)", () => {
  const armed = { ino: "7", mode: 0o444, uid: 0, gid: 0, nlink: 1, btime: "1000" };
  const reborn = (btime: string | undefined, created: boolean) => ({
    ok: true as const,
    file: { ...armed, btime },
    created,
  });
  // [found, the watch saw its last link go, kind]
  const rows: [Verification, boolean, string | undefined][] = [
    [reborn("1000", false), false, undefined], // the same file
    [reborn("2000", true), false, "Removed"], // planted again: another birth time
    [reborn("2000", false), false, "Replaced"], // the container's own file
    [reborn(undefined, true), false, "Removed"], // we created it: the path was empty
    [reborn(undefined, false), true, "Replaced"],
    [reborn(undefined, false), false, undefined], // nothing tells: taken as the same file
  ];
  for (const [found, gone, kind] of rows) {
    const verdict = judgeChange(armed, found, false, gone);
    assert.equal(verdict.change?.kind, kind, JSON.stringify({ found, gone }));
    if (kind) assert.match(verdict.change!.message, /inode 7, the same number reused/);
  }
});

Deno.test("plantTargets() carries the decoy into the registration and status, and keeps it for the same file", async () => {
  const planter = new ScriptedPlanter();
  const options = { planter, log: createLogger("error", () => {}), nodeName: "n", verifyMs: 0 };
  const decoy = { id: "KIVE234567ABCDEF", kind: "npmrc" };
  planter.answer = { ok: true, dev: 42, ino: "1001", btime: "7", created: true, decoy };
  let state = await plantTargets(new Map(), [target()], options);
  assert.deepEqual(state.get(target().key)?.registration?.decoy, decoy);
  assert.deepEqual((state.get(target().key)?.outcome as { decoy?: unknown }).decoy, decoy);

  // The container touched the file (its mark is gone): the same file is still the decoy.
  planter.answer = { ok: true, dev: 42, ino: "1001", btime: "7", created: false };
  state = await plantTargets(state, [target()], options);
  assert.deepEqual(state.get(target().key)?.registration?.decoy, decoy);

  // Replaced by a file of its own: not our decoy, whatever its name.
  planter.answer = { ok: true, dev: 42, ino: "1002", btime: "9", created: false };
  state = await plantTargets(state, [target()], options);
  assert.equal(state.get(target().key)?.registration?.decoy, undefined);
});
