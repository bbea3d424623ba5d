/**
 * A hostile container against the real agent: it puts a fifo, a device node, a directory, a
 * relative symlink, a symlinked parent and magic links at its trap paths before the policy
 * comes. The agent must not block, follow or create anything outside the container, must say
 * why for each, and must keep the control trap of the same policy armed: every access of it
 * delivered.
 */
import assert from "node:assert/strict";
import { AgentProcess, waitFor } from "../integration/_cluster.ts";
import {
  applyPolicy,
  appPod,
  deletePolicy,
  hostStat,
  nodeStatus,
  startContainer,
  withFixture,
} from "../integration/_fixture.ts";

const HOSTILE = [
  { path: "/fifo.txt", setup: "mkfifo /fifo.txt" },
  // The container may not mknod; runc gives it a real /dev/null.
  { path: "/dev/null", setup: "test -c /dev/null" },
  { path: "/dir.txt", setup: "mkdir /dir.txt" },
  { path: "/rel.txt", setup: "ln -s etc/hostname /rel.txt" },
  { path: "/self/etc/passwd-trap", setup: "ln -s /proc/self/root /self" },
  { path: "/hostproc/1/root/tmp/kivebpf-escape", setup: "ln -s /proc /hostproc" },
  { path: "/up/up/up/tmp/kivebpf-up", setup: "ln -s .. /up" },
];

Deno.test("fifos, devices, directories and symlinks at trap paths: refused with reasons, nothing followed, the control trap alerts", async () => {
  await withFixture(async (fixture) => {
    const container = await startContainer(fixture);
    await container.execOk(["sh", "-c", HOSTILE.map((h) => h.setup).join(" && ")]);
    const hostBefore = await Promise.all(
      ["/tmp/kivebpf-escape", "/tmp/kivebpf-up", "/etc/passwd-trap"].map((p) =>
        Deno.lstat(p).then(() => true, () => false)
      ),
    );
    await appPod(fixture, "hostile-pod", container);
    const agent = new AgentProcess("node-a");
    fixture.agents.push(agent);
    const policy = `hostile-${crypto.randomUUID().slice(0, 8)}`;
    await applyPolicy(policy, {
      traps: [
        ...HOSTILE.map((h) => ({ path: h.path, create: true, matchAny: [{ pod: "hostile-pod" }] })),
        { path: "/control.txt", create: true, matchAny: [{ pod: "hostile-pod" }] },
      ],
    });
    fixture.cleanups.push(() => deletePolicy(policy));
    // Planted is not armed: wait until this agent leads its kernel (an earlier test's agent may
    // hold the Lease for one more lease duration) and status shows the control trap armed.
    const entry = await waitFor("status for every trap, the control trap armed", async () => {
      const found = await nodeStatus(policy, "node-a");
      // deno-lint-ignore no-explicit-any
      const control = found?.traps?.find((t: any) => t.path === "/control.txt");
      return found?.traps?.length === HOSTILE.length + 1 && control?.armed === 1
        ? found
        : undefined;
    }, 90);
    // deno-lint-ignore no-explicit-any
    const byPath = new Map<string, any>(entry.traps.map((t: any, i: number) => [
      i < HOSTILE.length ? HOSTILE[i].path : "/control.txt",
      t,
    ]));
    const reasons = Object.fromEntries(
      [...byPath].map(([path, t]) => [path, t.armed === 1 ? "armed" : t.problems?.[0]?.reason]),
    );
    console.log(JSON.stringify(reasons));
    assert.equal(reasons["/control.txt"], "armed");
    for (const path of ["/fifo.txt", "/dev/null", "/dir.txt"]) {
      assert.equal(reasons[path], "NotARegularFile", path);
    }
    assert.equal(reasons["/rel.txt"], "PathIsSymlink");
    for (const path of HOSTILE.slice(4).map((h) => h.path)) {
      // Magic links are refused; a parent of ".." stays inside the container's root.
      assert.ok(reasons[path] !== undefined, `${path} has a verdict`);
    }
    // Nothing appeared on the host, and the fifo and the device are still what they were.
    const hostAfter = await Promise.all(
      ["/tmp/kivebpf-escape", "/tmp/kivebpf-up", "/etc/passwd-trap"].map((p) =>
        Deno.lstat(p).then(() => true, () => false)
      ),
    );
    assert.deepEqual(hostAfter, hostBefore);
    assert.ok((await hostStat(container, "/fifo.txt"))?.isFifo, "the fifo is left alone");
    assert.ok((await hostStat(container, "/rel.txt"))?.isSymlink, "the symlink is left alone");
    // The control trap of the same policy reports every access.
    await waitFor(
      "the leader to arm the control trap",
      () => agent.leading() && agent.stderrLines.some((l) => l.includes("kernel traps updated")),
    );
    for (let i = 0; i < 10; i++) await container.execOk(["cat", "/control.txt"]);
    await waitFor("10 alerts", () => agent.alerts().length >= 10, 30);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(agent.alerts().length, 10, "one alert per access, nothing else");
  });
});
