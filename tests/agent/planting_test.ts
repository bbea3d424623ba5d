import assert from "node:assert/strict";
import type { TrapPlanter } from "../../src/agent/agent_options.ts";
import type { TrapTarget } from "../../src/agent/desired.ts";
import { createLogger } from "../../src/agent/log.ts";
import { plantTargets } from "../../src/agent/planting.ts";

/** Plants by answering from a script; counts calls. */
class ScriptedPlanter implements TrapPlanter {
  calls = 0;
  answer: Awaited<ReturnType<TrapPlanter["plant"]>> | Error = { ok: true, dev: 42, ino: "1001" };
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
