/**
 * The evasion table of docs/ENGINE.md: every way of opening or executing a file that an
 * intruder could pick to slip past a syscall-based monitor reaches the trap, on whatever
 * backend this run uses (the host's tracepoint backend, each backend in the VM matrix).
 */
import assert from "node:assert/strict";
import { MAY_EXEC, MAY_OPEN, MAY_READ, MAY_WRITE } from "../../src/engine/mod.ts";
import { buildC } from "../bpf/_object.ts";
import { NOOP_C } from "./_c_programs.ts";
import { OPEN_PATH_TECHNIQUES, OPEN_PATHS_C, type OpenPathTechnique } from "./_open_paths_c.ts";
import { run, tempDir, withEngine, writeFile } from "./_fixtures.ts";

/** The mask each technique's open must report. */
function expectedMask(technique: OpenPathTechnique): number {
  if (technique.endsWith("execve") || technique === "execveat") return MAY_EXEC | MAY_OPEN;
  if (technique === "int80-creat") return MAY_OPEN | MAY_WRITE;
  return MAY_OPEN | MAY_READ;
}

Deno.test("every open and exec path in the evasion table reports the trap once", async (t) => {
  const bin = await buildC("open-paths", OPEN_PATHS_C);
  const noop = await buildC("noop", NOOP_C);
  await using dir = await tempDir();
  await withEngine(async (engine, events) => {
    let trapId = 700;
    for (const technique of OPEN_PATH_TECHNIQUES) {
      trapId++;
      await t.step(`${technique} (${engine.backend})`, async () => {
        const exec = expectedMask(technique) & MAY_EXEC;
        // A fresh trap each: creat truncates its file.
        const trap = `${dir.path}/${technique}${exec ? "" : ".txt"}`;
        if (exec) {
          await Deno.copyFile(noop, trap);
          await Deno.chmod(trap, 0o755);
        } else {
          await writeFile(trap);
        }
        engine.armPath(trap, trapId);
        const p = await run([bin, technique, trap], { cwd: dir.path });
        assert.equal(p.code, 0, `${technique} failed: ${p.stderr}`);
        const got = await events.waitFor(trapId, 1);
        assert.equal(got.length, 1, `${technique}: ${got.length} events, want exactly 1`);
        const [e] = got;
        // io-wq workers and SQPOLL threads are threads of the submitting process.
        assert.equal(e.tgid, p.pid, `${technique}: tgid names the submitting process`);
        assert.equal(e.ppid, Deno.pid);
        assert.equal(e.exe, exec ? trap : bin);
        assert.equal(e.mask, expectedMask(technique));
        assert.equal(e.hook, exec ? "exec" : engine.backend);
      });
    }
  });
});

Deno.test("an io_uring open of a file that is not a trap reports nothing", async () => {
  const bin = await buildC("open-paths", OPEN_PATHS_C);
  await using dir = await tempDir();
  const trap = `${dir.path}/trap.txt`;
  const other = `${dir.path}/other.txt`;
  await writeFile(trap);
  await writeFile(other);
  await withEngine(async (engine, events) => {
    engine.armPath(trap, 780);
    for (const technique of OPEN_PATH_TECHNIQUES.filter((t) => t.startsWith("uring-"))) {
      const p = await run([bin, technique, other], { cwd: dir.path });
      assert.equal(p.code, 0, `${technique}: ${p.stderr}`);
    }
    // One real access last, so that waiting for it also lets anything wrong arrive.
    const p = await run([bin, "uring-openat", trap], { cwd: dir.path });
    assert.equal(p.code, 0, p.stderr);
    const got = await events.waitFor(780, 1);
    assert.equal(got.length, 1);
    assert.equal(got[0].tgid, p.pid);
  });
});
