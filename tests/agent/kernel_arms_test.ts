import assert from "node:assert/strict";
import type { TrapKey } from "../../src/engine/mod.ts";
import type { TrapRegistration } from "../../src/agent/alert.ts";
import { KernelArms } from "../../src/agent/kernel_arms.ts";
import { accessEvent, registration as baseRegistration } from "./_fixtures.ts";

/**
 * Records what is armed, like the engine's trap map; refuses what the real engine refuses
 * (block without lsm) and, on request, the inodes in `refuse` (a full map, say).
 */
class RecordingEngine {
  armed = new Map<string, { trapId: number; block: boolean }>();
  refuse = new Set<string>();
  constructor(readonly backend = "lsm") {}
  arm(key: TrapKey, trapId: number, options: { block?: boolean } = {}) {
    if (options.block && this.backend !== "lsm") {
      throw new RangeError(
        `The block action needs the lsm backend; this engine uses "${this.backend}"`,
      );
    }
    if (this.refuse.has(`${key.dev}:${key.ino}`)) throw new Error("bpf_map_update_elem: E2BIG");
    this.armed.set(`${key.dev}:${key.ino}`, { trapId, block: options.block ?? false });
  }
  disarm(key: TrapKey) {
    return this.armed.delete(`${key.dev}:${key.ino}`);
  }
}

function registration(
  policy: string,
  ino: string,
  container: string,
  extra: Partial<TrapRegistration> = {},
): TrapRegistration {
  return baseRegistration(ino, {
    policy: { namespace: "ns", name: policy, uid: `uid-${policy}` },
    container: { name: "c", id: container },
    ...extra,
  });
}

const event = accessEvent;

Deno.test("KernelArms.sync() arms one kernel trap per inode and disarms what is gone", () => {
  const engine = new RecordingEngine();
  const arms = new KernelArms();
  assert.deepEqual(
    arms.sync(engine, [
      registration("p", "7", "c1"),
      registration("q", "7", "c1"),
      registration("p", "8", "c2"),
    ]),
    { armed: 2, disarmed: 0, failed: [], blockNotEnforced: [] },
  );
  assert.deepEqual([...engine.armed.keys()].sort(), ["42:7", "42:8"]);
  assert.deepEqual(arms.sync(engine, [registration("p", "7", "c1")]), {
    armed: 0,
    disarmed: 1,
    failed: [],
    blockNotEnforced: [],
  });
  assert.deepEqual([...engine.armed.keys()], ["42:7"]);
  assert.deepEqual(arms.sync(engine, [registration("p", "7", "c1")]), {
    armed: 0,
    disarmed: 0,
    failed: [],
    blockNotEnforced: [],
  });
});

Deno.test("KernelArms.sync() re-arms an inode when a block action appears", () => {
  const engine = new RecordingEngine();
  const arms = new KernelArms();
  arms.sync(engine, [registration("p", "7", "c1")]);
  arms.sync(engine, [
    registration("p", "7", "c1"),
    registration("q", "7", "c1", { action: "block" }),
  ]);
  assert.equal(engine.armed.get("42:7")?.block, true);
});

Deno.test("KernelArms.route() gives one alert per policy trap, preferring the accessor's container", () => {
  const engine = new RecordingEngine();
  const arms = new KernelArms();
  arms.sync(engine, [
    registration("p", "7", "c1"),
    registration("p", "7", "c2"),
    registration("q", "7", "c2"),
  ]);
  const trapId = engine.armed.get("42:7")!.trapId;
  const routed = arms.route(event(trapId, 7n), () => "c2");
  assert.deepEqual(routed.map((r) => `${r.policy.name}:${r.container.id}`).sort(), [
    "p:c2",
    "q:c2",
  ]);
  const unknownAccessor = arms.route(event(trapId, 7n), () => undefined);
  assert.deepEqual(unknownAccessor.map((r) => `${r.policy.name}:${r.container.id}`).sort(), [
    "p:c1",
    "q:c2",
  ]);
  assert.deepEqual(arms.route(event(999, 9n)), []);
});

Deno.test("KernelArms.sync() arms a block trap to alert on a backend that cannot block, and says so", () => {
  // The shipped full sample's block trap on the tracepoint backend once threw out of sync and
  // left every other policy of the node unarmed.
  const engine = new RecordingEngine("tracepoint");
  const arms = new KernelArms();
  const blocked = registration("full", "8", "c1", { action: "block" });
  const result = arms.sync(engine, [registration("seed", "7", "c1"), blocked]);
  assert.equal(result.armed, 2);
  assert.deepEqual(result.failed, []);
  assert.deepEqual(result.blockNotEnforced, [blocked]);
  assert.deepEqual(engine.armed.get("42:8"), {
    trapId: engine.armed.get("42:8")!.trapId,
    block: false,
  });
  assert.ok(engine.armed.has("42:7"));
  assert.ok(arms.isArmed(blocked));
});

Deno.test("KernelArms.sync() isolates an inode the kernel refuses: the others stay armed and route", () => {
  const engine = new RecordingEngine("tracepoint");
  engine.refuse.add("42:9");
  const arms = new KernelArms();
  const refused = registration("bad", "9", "c1");
  const result = arms.sync(engine, [
    registration("p", "7", "c1"),
    refused,
    registration("q", "8", "c2"),
  ]);
  assert.equal(result.armed, 2);
  assert.equal(result.failed.length, 1);
  assert.deepEqual(result.failed[0].registrations, [refused]);
  assert.equal(result.failed[0].op, "arm");
  assert.ok(!arms.isArmed(refused));
  const trapId = engine.armed.get("42:8")!.trapId;
  assert.deepEqual(arms.route(event(trapId, 8n)).map((r) => r.policy.name), ["q"]);
  // Once the kernel takes it, the next sync arms it.
  engine.refuse.clear();
  const retry = arms.sync(engine, [
    registration("p", "7", "c1"),
    refused,
    registration("q", "8", "c2"),
  ]);
  assert.equal(retry.armed, 1);
  assert.ok(arms.isArmed(refused));
});

Deno.test("KernelArms.sync() isolates a registration with an unreadable inode number", () => {
  const engine = new RecordingEngine();
  const arms = new KernelArms();
  const malformed = registration("bad", "not-a-number", "c1");
  const result = arms.sync(engine, [malformed, registration("p", "7", "c1")]);
  assert.equal(result.armed, 1);
  assert.equal(result.failed.length, 1);
  assert.ok(engine.armed.has("42:7"));
});
