import assert from "node:assert/strict";
import { MAY_EXEC, MAY_OPEN, MAY_READ } from "../../src/engine/mod.ts";
import { buildC } from "../bpf/_object.ts";
import { NOOP_C, THREADS_C } from "./_c_programs.ts";
import {
  assertProcess,
  asUser,
  hostMntNs,
  run,
  tempDir,
  which,
  withEngine,
  writeFile,
} from "./_fixtures.ts";

const OPEN_READ = MAY_OPEN | MAY_READ; // 36

Deno.test("armPath() reports cat of a trapped file with args and cwd", async () => {
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  await withEngine(async (engine, events) => {
    const key = engine.armPath(trap, 101);
    const user = asUser();
    const startNs = BigInt(Date.now()) * 1_000_000n;
    const cat = await run([...user.prefix, "cat", "secret.txt"], { cwd: dir.path });
    assert.equal(cat.stdout, "secret\n");
    const got = await events.waitFor(101, 1);
    assert.equal(got.length, 1);
    const [e] = got;
    assertProcess(e, {
      trapId: 101,
      pid: cat.pid,
      tgid: cat.pid,
      ppid: Deno.pid,
      uid: user.uid,
      gid: user.gid,
      comm: "cat",
      exe: which("cat")!,
      args: ["cat", "secret.txt"],
      cwd: dir.path,
      mask: OPEN_READ,
      mntNs: hostMntNs(),
    });
    assert.equal(e.dev, key.dev);
    assert.equal(e.ino, key.ino);
    assert.equal(e.hook, engine.backend);
    assert.equal(e.blocked, false);
    assert.equal(e.count, 1);
    assert.deepEqual(e.truncated, { exe: false, args: false, cwd: false });
    const endNs = BigInt(Date.now()) * 1_000_000n;
    assert.ok(e.timeNs >= startNs - 1_000_000_000n && e.timeNs <= endNs + 1_000_000_000n);
  });
});

Deno.test("a shell redirect, head -c1, a hard link and a bind mount each yield one event", async () => {
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  const link = `${dir.path}/hardlink.txt`;
  await Deno.link(trap, link);
  const bind = `${dir.path}/bind.txt`;
  await writeFile(bind, "");
  const mount = await run(["mount", "--bind", trap, bind]);
  assert.equal(mount.code, 0, `mount --bind: ${mount.stderr}`);
  try {
    await withEngine(async (engine, events) => {
      engine.armPath(trap, 102);
      const user = asUser();
      const cases = [
        { argv: ["sh", "-c", `read x < ${trap}`], comm: "sh", exe: which("sh")! },
        { argv: ["head", "-c1", trap], comm: "head", exe: which("head")! },
        { argv: ["cat", link], comm: "cat", exe: which("cat")! },
        { argv: ["cat", bind], comm: "cat", exe: which("cat")! },
      ];
      for (const c of cases) {
        const before = events.accesses(102).length;
        const p = await run([...user.prefix, ...c.argv], { cwd: dir.path });
        assert.equal(p.code, 0, `${c.argv.join(" ")}: ${p.stderr}`);
        const got = (await events.waitFor(102, before + 1)).slice(before);
        assert.equal(got.length, 1, `${c.argv.join(" ")} yields exactly one event`);
        assertProcess(got[0], {
          pid: p.pid,
          tgid: p.pid,
          ppid: Deno.pid,
          uid: user.uid,
          comm: c.comm,
          exe: c.exe,
          args: c.argv,
          cwd: dir.path,
          mask: OPEN_READ,
        });
      }
    });
  } finally {
    await run(["umount", bind]);
  }
});

Deno.test("exec of a trapped binary reports MAY_EXEC with the trap as exe", async () => {
  // A static program of our own: busybox's applets would not run under another name.
  const noop = await buildC("noop", NOOP_C);
  await using dir = await tempDir();
  const trap = `${dir.path}/trapped-noop`;
  await Deno.copyFile(noop, trap);
  await Deno.chmod(trap, 0o755);
  await withEngine(async (engine, events) => {
    engine.armPath(trap, 103);
    const user = asUser();
    const p = await run([...user.prefix, trap, "--flag", "x y"], { cwd: "/" });
    assert.equal(p.code, 0, p.stderr);
    const got = await events.waitFor(103, 1);
    assert.equal(got.length, 1);
    assertProcess(got[0], {
      pid: p.pid,
      tgid: p.pid,
      uid: user.uid,
      comm: "trapped-noop",
      exe: trap,
      args: [trap, "--flag", "x y"],
      cwd: "/",
      mask: MAY_EXEC | MAY_OPEN,
    });
    assert.equal(got[0].hook, "exec");
  });
});

Deno.test("a multi-threaded reader yields one event per thread of the same process", async () => {
  const bin = await buildC("threads", THREADS_C);
  await using dir = await tempDir();
  const trap = `${dir.path}/secret.txt`;
  await writeFile(trap);
  await withEngine(async (engine, events) => {
    engine.armPath(trap, 104);
    const p = await run([bin, trap, "4"], { cwd: dir.path });
    assert.equal(p.code, 0, p.stderr);
    const tids = p.stdout.trim().split("\n").map(Number).sort();
    const got = await events.waitFor(104, 4);
    assert.equal(got.length, 4);
    assert.deepEqual(got.map((e) => e.pid).sort(), tids);
    for (const e of got) {
      assertProcess(e, {
        tgid: p.pid,
        exe: bin,
        args: [bin, trap, "4"],
        cwd: dir.path,
        mask: OPEN_READ,
      });
    }
  });
});

const runc = which("runc");
const busybox = which("busybox");
Deno.test({
  name: "a process in a runc container is reported with the container's view",
  // Not a kernel feature: the VM matrix may lack these tools.
  ignore: !runc || !busybox || !Deno.statSync(busybox).isFile,
  async fn() {
    await using dir = await tempDir();
    const bundle = `${dir.path}/bundle`;
    const rootfs = `${bundle}/rootfs`;
    await Deno.mkdir(`${rootfs}/bin`, { recursive: true });
    await Deno.mkdir(`${rootfs}/work`, { recursive: true });
    await Deno.copyFile(busybox!, `${rootfs}/bin/busybox`);
    await Deno.chmod(`${rootfs}/bin/busybox`, 0o755);
    for (const applet of ["cat", "sh"]) await Deno.symlink("busybox", `${rootfs}/bin/${applet}`);
    const trap = `${rootfs}/secret.txt`;
    await writeFile(trap);
    const spec = await run([runc!, "spec", "--bundle", bundle]);
    assert.equal(spec.code, 0, spec.stderr);
    const config = JSON.parse(await Deno.readTextFile(`${bundle}/config.json`));
    config.process.terminal = false;
    config.process.args = ["cat", "/secret.txt"];
    config.process.cwd = "/work";
    config.root.readonly = false;
    await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(config));
    const id = `kivebpf-test-${Deno.pid}`;
    await withEngine(async (engine, events) => {
      engine.armPath(trap, 105);
      const p = await run([
        runc!,
        "--root",
        `${dir.path}/runc-state`,
        "run",
        "--bundle",
        bundle,
        "--pid-file",
        `${dir.path}/pid`,
        id,
      ]);
      assert.equal(p.code, 0, `runc run: ${p.stderr}`);
      assert.equal(p.stdout, "secret\n");
      const pid = Number(await Deno.readTextFile(`${dir.path}/pid`));
      const got = await events.waitFor(105, 1);
      assert.equal(got.length, 1);
      assertProcess(got[0], {
        pid,
        tgid: pid,
        uid: 0,
        comm: "cat",
        exe: "/bin/busybox",
        args: ["cat", "/secret.txt"],
        cwd: "/work",
        mask: OPEN_READ,
      });
      assert.notEqual(got[0].mntNs, hostMntNs(), "the container's own mount namespace");
    });
  },
});

Deno.test("armPath() arms the key the hook sees for a file on overlayfs", async (t) => {
  await using dir = await tempDir();
  for (const d of ["lower", "upper", "work", "merged"]) await Deno.mkdir(`${dir.path}/${d}`);
  await writeFile(`${dir.path}/lower/secret.txt`);
  const mount = await run([
    "mount",
    "-t",
    "overlay",
    "overlay",
    "-o",
    `lowerdir=${dir.path}/lower,upperdir=${dir.path}/upper,workdir=${dir.path}/work`,
    `${dir.path}/merged`,
  ]);
  // Container runtimes need overlayfs; the VM matrix loads its module (scripts/vm/init.sh).
  assert.equal(mount.code, 0, `cannot mount overlayfs: ${mount.stderr.trim()}`);
  try {
    await withEngine(async (engine, events) => {
      const trap = `${dir.path}/merged/secret.txt`;
      const learned = engine.learnKey(trap);
      assert.ok(learned, "the hook saw the agent's open");
      const key = engine.armPath(trap, 106);
      assert.deepEqual(key, learned);
      await t.step("cat through the overlay mount is reported", async () => {
        const p = await run(["cat", trap], { cwd: dir.path });
        assert.equal(p.code, 0, p.stderr);
        const got = await events.waitFor(106, 1);
        assert.equal(got.length, 1);
        assertProcess(got[0], { tgid: p.pid, comm: "cat", args: ["cat", trap], cwd: dir.path });
      });
    });
  } finally {
    await run(["umount", `${dir.path}/merged`]);
  }
});
