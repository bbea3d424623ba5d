import assert from "node:assert/strict";
import { run, sleep, tempDir, withEngine, writeFile } from "./_fixtures.ts";

/** Where cgroup2 is mounted (`/sys/fs/cgroup/unified` on a hybrid host), else null. */
function cgroup2Mount(): string | null {
  for (const line of Deno.readTextFileSync("/proc/self/mounts").split("\n")) {
    const [, mountPoint, type] = line.split(" ");
    if (type === "cgroup2") return mountPoint;
  }
  return null;
}

async function sh(command: string): Promise<void> {
  const r = await run(["sh", "-c", command]);
  assert.equal(r.code, 0, `${command}: ${r.stderr}`);
}

/**
 * A new child cgroup of the cgroup2 hierarchy (mounted for the test when the host has
 * no cgroup2 mount), its id (the directory's inode number, what
 * bpf_get_current_cgroup_id() returns), removed by dispose.
 */
async function childCgroup(): Promise<{ path: string; id: bigint } & AsyncDisposable> {
  let root = cgroup2Mount();
  let mounted: string | null = null;
  if (!root) {
    mounted = await Deno.makeTempDir({ prefix: "kivebpf-cgroup2-" });
    await sh(`mount -t cgroup2 none ${mounted}`);
    root = mounted;
  }
  const path = `${root}/kivebpf-test-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(path);
  return {
    path,
    id: BigInt(Deno.statSync(path).ino!),
    async [Symbol.asyncDispose]() {
      // The processes moved into it have exited; their cgroup may take a moment to empty.
      for (let i = 0;; i++) {
        try {
          await Deno.remove(path);
          break;
        } catch (error) {
          if (i >= 50) throw error;
          await sleep(20);
        }
      }
      if (mounted) {
        await sh(`umount ${mounted}`);
        await Deno.remove(mounted);
      }
    },
  };
}

/** Runs `cat file` from a shell that first moves itself into the cgroup at `cgroup`. */
function catIn(cgroup: string, file: string): ReturnType<typeof run> {
  return run(["sh", "-c", `echo $$ > '${cgroup}/cgroup.procs' && exec cat '${file}'`]);
}

Deno.test("setCgroupFilter() reports only tasks of the given cgroup v2 ids; null checks every task", async () => {
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  await using cgroup = await childCgroup();
  await withEngine(async (engine, events) => {
    engine.armPath(trap, 401);
    assert.equal(engine.cgroupFilter(), null, "off by default");

    engine.setCgroupFilter([cgroup.id]);
    assert.deepEqual(engine.cgroupFilter(), [cgroup.id]);
    const outside = await run(["cat", trap]); // in this process's cgroup, not in the set
    assert.equal(outside.code, 0);
    const inside = await catIn(cgroup.path, trap);
    assert.equal(inside.code, 0, inside.stderr);
    const got = await events.waitFor(401, 1);
    assert.deepEqual(got.map((e) => [e.tgid, e.cgroupId]), [[inside.pid, cgroup.id]]);

    engine.setCgroupFilter([]); // no cgroup: nothing is checked
    assert.equal((await catIn(cgroup.path, trap)).code, 0);
    await sleep(300);
    assert.equal(events.accesses(401).length, 1, "an empty set reports nothing");

    engine.setCgroupFilter(null);
    assert.equal(engine.cgroupFilter(), null);
    const again = await run(["cat", trap]);
    const after = await events.waitFor(401, 2);
    assert.deepEqual(after.map((e) => e.tgid), [inside.pid, again.pid], "every task once off");
    assert.equal(engine.counters().lost, 0);
  });
});

Deno.test("setCgroupFilter() validates ids and its size; a set can replace another", async () => {
  await withEngine((engine) => {
    assert.throws(() => engine.setCgroupFilter([-1n]), RangeError);
    assert.throws(() => engine.setCgroupFilter([1n << 64n]), RangeError);
    assert.throws(() => engine.setCgroupFilter([1 as unknown as bigint]), RangeError);
    assert.throws(() => engine.setCgroupFilter([1n, 2n, 3n]), /maxCgroups/);
    assert.equal(engine.cgroupFilter(), null, "a refused set changes nothing");
    engine.setCgroupFilter([1n, 2n]);
    engine.setCgroupFilter(new Set([2n, 5n]));
    assert.deepEqual(engine.cgroupFilter()?.sort(), [2n, 5n]);
  }, { maxCgroups: 2 });
});
