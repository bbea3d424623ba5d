import assert from "node:assert/strict";
import {
  ensureTrapFile,
  findProcess,
  type NewFile,
  type TrapFileResult,
} from "../../src/containers/mod.ts";
import { check, randomHex, RuncContainer, USERNS_BASE } from "./_runc.ts";

/** stat(1) on the host, not following a final symlink. */
async function hostStat(path: string, format: string): Promise<string> {
  return (await check("stat", ["-c", format, path])).trim();
}

/** Host path of a path inside the container. */
function inside(container: RuncContainer, path: string): string {
  return `/proc/${container.pid}/root${path}`;
}

function assertOk(result: TrapFileResult): Extract<TrapFileResult, { ok: true }>["file"] {
  assert.ok(result.ok, `expected success, got ${JSON.stringify(!result.ok && result.problem)}`);
  return result.file;
}

function assertProblem(result: TrapFileResult, reasons: string[]): void {
  assert.ok(!result.ok, `expected ${reasons.join(" or ")}, got success ${JSON.stringify(result)}`);
  assert.ok(
    reasons.includes(result.problem.reason),
    `expected ${reasons.join(" or ")}, got ${JSON.stringify(result.problem)}`,
  );
}

/** Runs `fn` with the process umask set to `mask`, restoring it after. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = Deno.umask(mask);
  try {
    return await fn();
  } finally {
    Deno.umask(old);
  }
}

/** A host file the container's symlinks point at; everything about it must stay the same. */
class Canary implements AsyncDisposable {
  readonly path = `/tmp/kivebpf-canary-${randomHex(8)}`;
  #before = "";

  static async create(): Promise<Canary> {
    const canary = new Canary();
    await Deno.writeTextFile(canary.path, "canary: host data\n", { mode: 0o600 });
    await Deno.chmod(canary.path, 0o600);
    await Deno.utime(canary.path, new Date("2020-01-01"), new Date("2020-01-01"));
    canary.#before = await canary.#snapshot();
    return canary;
  }

  async #snapshot(): Promise<string> {
    const text = await Deno.readTextFile(this.path);
    return `${await hostStat(this.path, "%A %u:%g %s %Y %i")} ${text}`;
  }

  async assertUntouched(): Promise<void> {
    assert.equal(await this.#snapshot(), this.#before, `host canary ${this.path} changed`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.path).catch(() => {});
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("ensureTrapFile() creates the file with exactly the mode, whatever the umask", async () => {
  await using container = await RuncContainer.start();
  for (
    const [mask, mode, want] of [
      [0o022, 0o444, "-r--r--r--"],
      [0o077, 0o444, "-r--r--r--"],
      [0o077, 0o666, "-rw-rw-rw-"],
      [0o000, 0o400, "-r--------"],
    ] as const
  ) {
    const path = `/secret-${mask.toString(8)}-${mode.toString(8)}.txt`;
    const file = await withUmask(
      mask,
      () => Promise.resolve(ensureTrapFile(container.pid, path, { create: true, mode })),
    );
    assertOk(file);
    assert.equal(await hostStat(inside(container, path), "%A"), want, `umask ${mask.toString(8)}`);
    assert.equal(file.ok && file.file.created, true);
    assert.equal(file.ok && file.file.mode, mode);
  }
});

Deno.test("ensureTrapFile() writes content once and gives the owner before the mode", async () => {
  await using container = await RuncContainer.start();
  const file = assertOk(ensureTrapFile(container.pid, "/home/app/.aws/credentials", {
    create: true,
    mode: 0o4750,
    content: "[default]\naws_secret_access_key = trap\n",
    owner: { uid: 1000, gid: 2000 },
  }));
  const host = inside(container, "/home/app/.aws/credentials");
  assert.equal(await Deno.readTextFile(host), "[default]\naws_secret_access_key = trap\n");
  // chown after chmod would have cleared the setuid bit.
  assert.equal(await hostStat(host, "%a %u:%g"), "4750 1000:2000");
  assert.deepEqual([file.uid, file.gid, file.size, file.mode], [1000, 2000, 39, 0o4750]);
  assert.equal(await hostStat(inside(container, "/home/app/.aws"), "%a %u:%g"), "755 0:0");
});

Deno.test("ensureTrapFile() maps owner ids through the container's user namespace", async () => {
  await using container = await RuncContainer.start({ userns: true });
  assertOk(ensureTrapFile(container.pid, "/root-owned/trap", { create: true }));
  assertOk(ensureTrapFile(container.pid, "/app/trap", {
    create: true,
    owner: { uid: 1000, gid: 2000 },
  }));
  const base = USERNS_BASE;
  for (
    const [path, host, seen] of [
      ["/root-owned", `${base}:${base}`, "0 0"],
      ["/root-owned/trap", `${base}:${base}`, "0 0"],
      ["/app", `${base}:${base}`, "0 0"],
      ["/app/trap", `${base + 1000}:${base + 2000}`, "1000 2000"],
    ]
  ) {
    assert.equal(await hostStat(inside(container, path), "%u:%g"), host, path);
    assert.equal((await container.execOk(["stat", "-c", "%u %g", path])).trim(), seen, path);
  }
  const unmapped = ensureTrapFile(container.pid, "/unmapped", {
    create: true,
    owner: { uid: 70000, gid: 0 },
  });
  assertProblem(unmapped, ["Other"]);
  assert.equal(await exists(inside(container, "/unmapped")), false);
});

Deno.test("ensureTrapFile() creates missing parent directories with 0755", async () => {
  await using container = await RuncContainer.start();
  const file = await withUmask(
    0o077,
    () => Promise.resolve(ensureTrapFile(container.pid, "/a/b/c/trap", { create: true })),
  );
  assertOk(file);
  for (const dir of ["/a", "/a/b", "/a/b/c"]) {
    assert.equal(await hostStat(inside(container, dir), "%F %a"), "directory 755", dir);
  }
  assert.equal(
    await hostStat(inside(container, "/a/b/c/trap"), "%F %a %s"),
    "regular empty file 444 0",
  );
  assert.equal(await container.execOk(["cat", "/a/b/c/trap"]), "");
});

Deno.test("ensureTrapFile() leaves an existing file's content, mode and mtime alone", async () => {
  await using container = await RuncContainer.start();
  const host = `${container.rootfs}/etc/existing.conf`;
  await Deno.writeTextFile(host, "keep me\n");
  await Deno.chmod(host, 0o640);
  await Deno.utime(host, new Date("2021-06-01"), new Date("2021-06-01"));
  const before = await hostStat(host, "%a %s %Y %Z %i");
  for (const create of [true, false]) {
    const file = assertOk(ensureTrapFile(container.pid, "/etc/existing.conf", {
      create,
      mode: 0o444,
      content: "overwritten\n",
      owner: { uid: 1, gid: 1 },
    }));
    assert.equal(file.created, false);
    assert.equal(file.mode, 0o640);
  }
  assert.equal(await Deno.readTextFile(host), "keep me\n");
  assert.equal(await hostStat(host, "%a %s %Y %Z %i"), before);
});

Deno.test("ensureTrapFile() reports FileMissing for a missing file without create", async () => {
  await using container = await RuncContainer.start();
  for (const path of ["/secret.txt", "/no/such/dir/secret.txt"]) {
    assertProblem(ensureTrapFile(container.pid, path), ["FileMissing"]);
    assert.equal(await exists(inside(container, path)), false, path);
  }
  assert.equal(await exists(inside(container, "/no")), false);
});

Deno.test("ensureTrapFile() reports NotARegularFile for a directory or a device", async () => {
  await using container = await RuncContainer.start();
  await container.execOk(["mkdir", "-p", "/secret.txt"]);
  for (const path of ["/secret.txt", "/tmp", "/dev/null"]) {
    for (const create of [true, false]) {
      assertProblem(ensureTrapFile(container.pid, path, { create }), ["NotARegularFile"]);
    }
  }
});

Deno.test("ensureTrapFile() returns the identity that stat reports inside the container", async () => {
  await using container = await RuncContainer.start();
  const created = assertOk(ensureTrapFile(container.pid, "/secret.txt", { create: true }));
  const again = assertOk(ensureTrapFile(container.pid, "/secret.txt"));
  assert.deepEqual({ ...again, created: true }, created);
  const [dev, ino] = (await container.execOk(["stat", "-c", "%d %i", "/secret.txt"])).trim()
    .split(" ");
  assert.equal(created.dev, BigInt(dev));
  assert.equal(created.ino, BigInt(ino));
  const [major, minor] = (await hostStat(inside(container, "/secret.txt"), "%Hd %Ld"))
    .split(" ").map(Number);
  assert.deepEqual([created.major, created.minor], [major, minor]);
  assert.equal(created.kernelDev, created.major * 2 ** 20 + created.minor);
  assert.equal(created.ino, BigInt((await Deno.stat(inside(container, "/secret.txt"))).ino!));
});

Deno.test("ensureTrapFile() refuses a final symlink to a host path and touches nothing", async () => {
  await using container = await RuncContainer.start();
  await using canary = await Canary.create();
  const fresh = `/tmp/kivebpf-canary-${randomHex(8)}`; // does not exist anywhere
  await container.execOk(["ln", "-s", canary.path, "/secret.txt"]);
  await container.execOk(["ln", "-s", fresh, "/fresh.txt"]);
  await container.execOk(["ln", "-s", "/etc/shadow", "/shadow.txt"]);
  for (const path of ["/secret.txt", "/fresh.txt", "/shadow.txt"]) {
    for (const create of [true, false]) {
      const result = ensureTrapFile(container.pid, path, { create, mode: 0o777, content: "x" });
      assertProblem(result, ["PathIsSymlink"]);
    }
  }
  await canary.assertUntouched();
  assert.equal(await exists(fresh), false, "created on the host");
  assert.equal(await exists(inside(container, fresh)), false, "created in the container");
  assert.equal(await exists(inside(container, canary.path)), false, "created in the container");
  assert.equal(await hostStat(inside(container, "/secret.txt"), "%F"), "symbolic link");
});

Deno.test("ensureTrapFile() resolves symlinked parents inside the container only", async () => {
  await using container = await RuncContainer.start();
  await using canary = await Canary.create();
  const name = canary.path.slice("/tmp/".length);
  // [link target, trap path, expected outcome, file created in the container (or none)]
  const table: [string, string, string[], string | undefined][] = [
    ["/", `/evil1${canary.path}`, ["ok"], canary.path],
    ["../../../../../../", `/evil2${canary.path}`, ["ok"], canary.path],
    ["/tmp", `/evil3/${name}`, ["ok"], canary.path],
    ["/proc/1/root", `/evil4${canary.path}`, ["PathEscapesRoot"], undefined],
    ["/proc/1/root/tmp", `/evil5/${name}`, ["PathEscapesRoot"], undefined],
    ["/proc/1/cwd", `/evil6${canary.path}`, ["PathEscapesRoot"], undefined],
    // The agent is not in the container's pid namespace: its /proc/self does not resolve.
    ["/proc/self/root/tmp", `/evil7/${name}`, ["FileMissing", "Other"], undefined],
  ];
  for (const [target, path, want, createdAt] of table) {
    await container.execOk(["ln", "-s", target, `/${path.split("/")[1]}`]);
    for (const create of [false, true]) {
      const result = ensureTrapFile(container.pid, path, { create, content: "trap\n" });
      if (want[0] === "ok" && create) {
        assert.equal(
          assertOk(result).ino,
          BigInt((await Deno.stat(inside(container, createdAt!))).ino!),
        );
      } else if (want[0] === "ok") {
        // Either still missing, or created by an earlier row through another link.
        if (!result.ok) assertProblem(result, ["FileMissing"]);
      } else {
        assertProblem(result, want);
      }
    }
    await canary.assertUntouched();
  }
  assert.equal(await Deno.readTextFile(inside(container, canary.path)), "trap\n");
});

Deno.test("ensureTrapFile() crosses the container's own mounts (volumes are legit)", async () => {
  const volume = await Deno.makeTempDir({ prefix: "kivebpf-volume-" });
  try {
    await using container = await RuncContainer.start({ binds: { "/data": volume } });
    const file = assertOk(ensureTrapFile(container.pid, "/data/creds/token", { create: true }));
    assert.equal(file.ino, BigInt((await Deno.stat(`${volume}/creds/token`)).ino!));
    assert.equal(await hostStat(`${volume}/creds/token`, "%a"), "444");
  } finally {
    await Deno.remove(volume, { recursive: true });
  }
});

Deno.test("ensureTrapFile() reports ContainerGone for an exited or replaced process", async () => {
  await using container = await RuncContainer.start();
  const found = await findProcess(container.id);
  assert.ok(found);
  assertOk(ensureTrapFile(container.pid, "/secret.txt", { create: true, mntNs: found.mntNs }));
  assertProblem(
    ensureTrapFile(container.pid, "/secret.txt", { mntNs: found.mntNs + 1 }),
    ["ContainerGone"],
  );
  await container.delete();
  assertProblem(ensureTrapFile(container.pid, "/secret.txt"), ["ContainerGone"]);
  assertProblem(
    ensureTrapFile(found.pid, "/x", { procRoot: "/nonexistent-proc" }),
    ["ContainerGone"],
  );
});

Deno.test("ensureTrapFile() closes every file descriptor it opens", async () => {
  await using container = await RuncContainer.start();
  await container.execOk(["ln", "-s", "/etc/shadow", "/link.txt"]);
  await container.execOk(["ln", "-s", "/proc/1/root", "/magic"]);
  const count = async () => (await Array.fromAsync(Deno.readDir("/proc/self/fd"))).length;
  const before = await count();
  for (let i = 0; i < 20; i++) {
    ensureTrapFile(container.pid, `/d${i}/e/trap`, {
      create: true,
      content: "x",
      owner: { uid: 1, gid: 1 },
    });
    ensureTrapFile(container.pid, `/d${i}/e/trap`);
    ensureTrapFile(container.pid, "/link.txt", { create: true });
    ensureTrapFile(container.pid, "/magic/x", { create: true });
    ensureTrapFile(container.pid, "/tmp", { create: true });
    ensureTrapFile(container.pid, "/missing");
  }
  assert.equal(await count(), before);
});

Deno.test("ensureTrapFile() rejects bad input with TypeError and RangeError", () => {
  const types: string[] = ["secret.txt", "/a/../secret.txt", "/", "//.", "/a\0b", ""];
  for (const path of types) assert.throws(() => ensureTrapFile(1, path), TypeError, path);
  const ranges: [number, number, { uid: number; gid: number } | undefined][] = [
    [0, 0o444, undefined],
    [-1, 0o444, undefined],
    [1.5, 0o444, undefined],
    [1, 0o10000, undefined],
    [1, -1, undefined],
    [1, 0o444, { uid: -1, gid: 0 }],
    [1, 0o444, { uid: 0, gid: 2 ** 32 }],
  ];
  for (const [pid, mode, owner] of ranges) {
    assert.throws(
      () => ensureTrapFile(pid, "/x", { create: true, mode, owner }),
      RangeError,
      `${pid} ${mode} ${JSON.stringify(owner)}`,
    );
  }
});

Deno.test("ensureTrapFile() reports the birth time, which tells a re-planted file from the old one when its inode number is reused", async () => {
  await using container = await RuncContainer.start();
  const first = assertOk(ensureTrapFile(container.pid, "/reborn.txt", { create: true }));
  // stat(1) prints 0 where the file system keeps no birth time (then so do we).
  const host = await hostStat(inside(container, "/reborn.txt"), "%.9W");
  if (Number(host) === 0) {
    assert.equal(first.btime, undefined);
    return;
  }
  assert.equal(first.btime, host.replace(".", ""));
  await container.execOk(["rm", "/reborn.txt"]);
  await new Promise((resolve) => setTimeout(resolve, 20)); // a later birth time, whatever the clock's grain
  const second = assertOk(ensureTrapFile(container.pid, "/reborn.txt", { create: true }));
  assert.equal(second.created, true);
  // ext4 hands the freed number to the next file created in the directory: the number alone
  // would take the new file for the old one.
  if (second.ino === first.ino) console.log("inode number reused, as ext4 does");
  assert.notEqual(second.btime, first.btime);
});

Deno.test("ensureTrapFile() makes content from the new file's identity, and marks its mtime fraction", async () => {
  await using container = await RuncContainer.start();
  const seen: NewFile[] = [];
  const file = assertOk(ensureTrapFile(container.pid, "/root/.npmrc", {
    create: true,
    mode: 0o600,
    content: (created) => {
      seen.push(created);
      return `ino=${created.ino}\n`;
    },
    mark: (created) => Number(created.ino % 1_000_000_000n),
  }));
  assert.equal(seen.length, 1);
  assert.equal(seen[0].ino, file.ino, "the maker sees the inode of the file it fills");
  assert.equal(seen[0].kernelDev, file.kernelDev);
  assert.equal(seen[0].btime, file.btime);
  const host = inside(container, "/root/.npmrc");
  assert.equal(await Deno.readTextFile(host), `ino=${file.ino}\n`);
  const mark = Number(file.ino % 1_000_000_000n);
  assert.equal(file.mtimeNsec, mark);
  assert.equal(Number((await hostStat(host, "%.9Y")).split(".")[1]), mark, "stat sees the mark");
  assert.equal(await hostStat(host, "%a"), "600");

  // Found again: nothing is made or written, and the mark is there to read.
  const again = assertOk(ensureTrapFile(container.pid, "/root/.npmrc", {
    create: true,
    content: () => {
      throw new Error("an existing file is never filled");
    },
    mark: () => 1,
  }));
  assert.equal(again.created, false);
  assert.equal(again.mtimeNsec, mark);
});

Deno.test("ensureTrapFile() leaves no file behind when the content cannot be made", async () => {
  await using container = await RuncContainer.start();
  const result = ensureTrapFile(container.pid, "/etc/app/.env", {
    create: true,
    content: () => {
      throw new Error("Secret kivebpf-system/env lacks the label");
    },
  });
  assertProblem(result, ["ContentUnavailable"]);
  assert.match(
    (result as { problem: { message: string } }).problem.message,
    /Cannot make the content of "\/etc\/app\/\.env".*lacks the label/,
  );
  await assert.rejects(Deno.lstat(inside(container, "/etc/app/.env")), Deno.errors.NotFound);
});
