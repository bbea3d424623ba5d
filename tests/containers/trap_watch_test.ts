/**
 * The inotify watch on planted trap files, against real runc containers: each change a
 * container can make to its trap (chmod, rename, removal, a symlink or a directory swapped in,
 * a renamed parent directory) is signalled for that trap only, a moved inode stays watched,
 * and a flood of unrelated names overflows into "verify everything" rather than being lost.
 */
import assert from "node:assert/strict";
import { ensureTrapFile, type TrapFileSignal, TrapFileWatcher } from "../../src/containers/mod.ts";
import { RuncContainer } from "./_runc.ts";

/** A watcher whose queue the test drains by hand; closed on dispose. */
function manualWatcher(): {
  watcher: TrapFileWatcher;
  drain: () => TrapFileSignal[];
} & Disposable {
  let got: TrapFileSignal[] = [];
  const watcher = new TrapFileWatcher({ onSignals: (s) => got.push(...s), pollMs: 3_600_000 });
  return {
    watcher,
    [Symbol.dispose]: () => watcher.close(),
    drain: () => {
      watcher.poll();
      const out = got;
      got = [];
      return out;
    },
  };
}

/** Plants `path` in the container and watches it under `key`; returns its inode. */
function plantWatched(
  watcher: TrapFileWatcher,
  container: RuncContainer,
  key: string,
  path: string,
): string {
  let problem: string | undefined = "not called";
  const result = ensureTrapFile(container.pid, path, {
    create: true,
    onPlanted: (handles, file) => {
      problem = watcher.watch(key, handles, file.ino.toString());
    },
  });
  assert.ok(result.ok, result.ok ? "" : result.problem.message);
  assert.equal(problem, undefined);
  return result.file.ino.toString();
}

const kinds = (signals: TrapFileSignal[], key: string): string[] =>
  [...new Set(signals.filter((s) => s.key === key).map((s) => s.kind as string))].sort();

Deno.test("a chmod, a rename, a removal and a symlink swapped in are each signalled for their trap only", async () => {
  await using container = await RuncContainer.start();
  using watched = manualWatcher();
  const { watcher, drain } = watched;
  const a = plantWatched(watcher, container, "a", "/etc/secrets/a.txt");
  plantWatched(watcher, container, "b", "/etc/secrets/b.txt");
  plantWatched(watcher, container, "c", "/c.txt");
  assert.deepEqual(drain(), [], "planting itself is not a change");

  await container.execOk(["chmod", "0777", "/etc/secrets/a.txt"]);
  let signals = drain();
  assert.deepEqual(kinds(signals, "a"), ["attrib", "path"]);
  assert.ok(signals.some((s) => s.kind === "attrib" && s.ino === a));
  assert.deepEqual(kinds(signals, "b"), [], "the neighbour in the same directory is untouched");

  await container.execOk(["mv", "/etc/secrets/a.txt", "/tmp/stolen.txt"]);
  signals = drain();
  assert.deepEqual(kinds(signals, "a"), ["moved", "path"]);
  assert.ok(watcher.watches("a", a), "the moved inode is still watched");

  await container.execOk(["rm", "/tmp/stolen.txt"]);
  signals = drain();
  // The link count drops (attrib), the last link goes (deleted), the watch ends (path).
  assert.ok(kinds(signals, "a").includes("deleted"), kinds(signals, "a").join());
  assert.ok(!kinds(signals, "a").includes("moved"));
  assert.ok(!watcher.watches("a", a), "a deleted inode is no longer watched");

  await container.execOk(["sh", "-c", "rm /c.txt && ln -s /etc/passwd /c.txt"]);
  signals = drain();
  assert.ok(["deleted", "path"].every((k) => kinds(signals, "c").includes(k)));
  assert.deepEqual(kinds(signals, "b"), []);

  await container.execOk(["sh", "-c", "rm /etc/secrets/b.txt && mkdir /etc/secrets/b.txt"]);
  signals = drain();
  assert.ok(["deleted", "path"].every((k) => kinds(signals, "b").includes(k)));
});

Deno.test("a renamed parent directory is signalled, the trap inode it took along stays watched, keep() drops the rest", async () => {
  await using container = await RuncContainer.start();
  using watched = manualWatcher();
  const { watcher, drain } = watched;
  const ino = plantWatched(watcher, container, "deep", "/data/keys/id_rsa");
  await container.execOk(["sh", "-c", "mv /data /data.old && mkdir -p /data/keys"]);
  const signals = drain();
  assert.deepEqual(kinds(signals, "deep"), ["path"], "no event on the file itself");
  assert.ok(watcher.watches("deep", ino), "its inode is still watched (it still exists)");
  // Planted again at the path: the new inode is watched beside the moved one.
  const fresh = plantWatched(watcher, container, "deep", "/data/keys/id_rsa");
  assert.notEqual(fresh, ino);
  assert.ok(watcher.watches("deep", fresh) && watcher.watches("deep", ino));
  watcher.keep(new Map([["deep", new Set([fresh])]]));
  assert.ok(!watcher.watches("deep", ino), "an inode no longer armed is no longer watched");
  const before = watcher.size;
  watcher.keep(new Map());
  assert.equal(watcher.size, 0, `every watch removed (had ${before})`);
  await container.execOk(["rm", "-r", "/data"]);
  assert.deepEqual(drain(), [], "nothing is signalled once forgotten");
});

Deno.test("a flood of unrelated names in a watched directory overflows into a signal for every trap", async () => {
  await using container = await RuncContainer.start();
  using watched = manualWatcher();
  const { watcher, drain } = watched;
  plantWatched(watcher, container, "root", "/flood-trap.txt");
  plantWatched(watcher, container, "other", "/etc/other.txt");
  // More events than the kernel queues by default (16,384): unrelated names in "/".
  await container.execOk([
    "sh",
    "-c",
    "i=0; while [ $i -lt 17000 ]; do : > /f$i; i=$((i+1)); done",
  ]);
  const signals = drain();
  assert.ok(watcher.overflows >= 1, "the overflow was seen");
  assert.deepEqual(kinds(signals, "other"), ["path"], "every trap is verified after a loss");
});
