/**
 * A container that tampers with its trap files, against the real agent, API server and kernel:
 * it renames a trap away, deletes one, puts its own file in place of one, chmods one, swaps a
 * symlink in for one and renames the directory of another. With periodic verification pushed out to an hour, only the inotify
 * watch can bring each change to light: the agent must re-plant and re-arm within seconds,
 * keep a moved trap armed (it is still the bait), never follow the symlink, and report every
 * change in status, as a pod Event and as a metric. Every access of an armed file alerts.
 */
import assert from "node:assert/strict";
import { AgentProcess, waitFor } from "../integration/_cluster.ts";
import {
  applyPolicy,
  appPod,
  deletePolicy,
  kube,
  nodeStatus,
  withFixture,
} from "../integration/_fixture.ts";

const TRAPS = [
  "/moved.txt",
  "/removed.txt",
  "/replaced.txt",
  "/chmod.txt",
  "/swapped.txt",
  "/dir/inner.txt",
];

Deno.test("trap files a container moves, removes, chmods or swaps are re-armed within seconds and every change is reported", async () => {
  await withFixture(async (fixture) => {
    const container = await appPod(fixture, "tamper-pod");
    const metricsPort = 20000 + Math.floor(Math.random() * 20000);
    const agent = new AgentProcess("node-a", [
      "--verify-seconds",
      "3600",
      "--metrics-port",
      String(metricsPort),
    ]);
    fixture.agents.push(agent);
    const policy = `tamper-${crypto.randomUUID().slice(0, 8)}`;
    await applyPolicy(policy, {
      traps: TRAPS.map((path) => ({ path, create: true, matchAny: [{ pod: "tamper-pod" }] })),
    });
    fixture.cleanups.push(() => deletePolicy(policy));
    // deno-lint-ignore no-explicit-any
    const trapOf = async (path: string): Promise<any> =>
      // deno-lint-ignore no-explicit-any
      (await nodeStatus(policy, "node-a"))?.traps?.find((t: any) => t.path === path);
    await waitFor("every trap armed by the leader", async () => {
      const armed = await Promise.all(TRAPS.map(async (p) => (await trapOf(p))?.armed === 1));
      return agent.leading() && armed.every(Boolean);
    }, 90);

    let accesses = 0;
    const access = async (path: string) => {
      await container.execOk(["cat", path]);
      accesses++;
    };
    /** Makes a change, waits until status reports it (written after the kernel sync). */
    const tamper = async (script: string, path: string, kind: string, armedAfter: number) => {
      const started = Date.now();
      await container.execOk(["sh", "-c", script]);
      await waitFor(`status to report ${kind} on ${path}`, async () => {
        const trap = await trapOf(path);
        // deno-lint-ignore no-explicit-any
        return trap?.changes?.some((c: any) => c.kind === kind) && trap.armed === armedAfter;
      }, 10);
      console.log(`${kind} on ${path}: reported and re-armed after ${Date.now() - started} ms`);
    };

    for (const path of TRAPS) await access(path);
    await waitFor("an alert for each trap", () => agent.alerts().length >= accesses, 30);

    await tamper("mv /moved.txt /tmp/moved-away.txt", "/moved.txt", "Moved", 1);
    await access("/moved.txt"); // the new trap at the path
    await access("/tmp/moved-away.txt"); // the moved one: still the bait

    await tamper("rm /removed.txt", "/removed.txt", "Removed", 1);
    await access("/removed.txt");

    // The container's own file renamed over the trap: it is what sits at the path now, so it
    // is armed, and the swap is reported. (Written first, so that writing it opens no trap.)
    await tamper(
      "echo decoy >/tmp/decoy && mv /tmp/decoy /replaced.txt",
      "/replaced.txt",
      "Replaced",
      1,
    );
    await access("/replaced.txt");

    await tamper("chmod 0640 /chmod.txt", "/chmod.txt", "ModeChanged", 1);
    await access("/chmod.txt");

    await tamper(
      "rm /swapped.txt && ln -s /etc/passwd /swapped.txt",
      "/swapped.txt",
      "ReplacedBySymlink",
      0,
    );
    const swapped = await trapOf("/swapped.txt");
    assert.equal(swapped.problems?.[0]?.reason, "PathIsSymlink", "the symlink is not followed");
    // Reads the container's own /etc/passwd through the symlink: not a trap, no alert.
    await container.execOk(["sh", "-c", "cat /swapped.txt >/dev/null || true"]);

    await tamper("mv /dir /dir.old && mkdir /dir", "/dir/inner.txt", "Moved", 1);
    await access("/dir/inner.txt");
    await access("/dir.old/inner.txt");

    await waitFor(`${accesses} alerts`, () => agent.alerts().length >= accesses, 30);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(agent.alerts().length, accesses, "accesses made = alerts delivered");

    // The changes are Events on the pod and a metric.
    const events = await kube.ok(
      "GET",
      `/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.name=tamper-pod`,
    );
    // deno-lint-ignore no-explicit-any
    const changed = events.items.filter((e: any) => e.reason === "TrapFileChanged");
    assert.ok(changed.length >= 1, "a TrapFileChanged Event on the pod");
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    for (const kind of ["Moved", "Removed", "Replaced", "ModeChanged", "ReplacedBySymlink"]) {
      assert.match(
        metrics,
        new RegExp(`kivebpf_trap_file_changes_total\\{kind="${kind}"\\} [1-9]`),
      );
    }
    assert.ok(
      agent.stderrLines.filter((l) => l.includes("trap file changed")).length >= 6,
      "each change is logged",
    );
  });
});
