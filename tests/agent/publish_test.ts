import assert from "node:assert/strict";
import { chunkRegistrations } from "../../src/agent/agent.ts";
import type { TrapRegistration } from "../../src/agent/alert.ts";

function registration(i: number): TrapRegistration {
  return {
    dev: 42,
    ino: `${1000 + i}`,
    policy: { namespace: "kivebpf-system", name: "p", uid: "0f6b9c2e-policy" },
    trapIndex: i % 10,
    path: `/trap-${i % 10}.txt`,
    alertVersion: "v1",
    metadata: { severity: "high" },
    action: "alert",
    pod: { namespace: "default", name: `pod-${i}`, uid: `uid-${i}` },
    container: { name: "app", id: `containerd://${"a".repeat(60)}${i}` },
    node: "node-a",
  };
}

Deno.test("chunkRegistrations() keeps each ConfigMap under the limit and loses nothing", () => {
  const all = Array.from({ length: 10_000 }, (_, i) => registration(i));
  const chunks = chunkRegistrations(all, 900_000);
  assert.ok(chunks.length >= 4, `${chunks.length} chunks`);
  for (const chunk of chunks) assert.ok(new TextEncoder().encode(chunk).length <= 900_000);
  assert.deepEqual(chunks.flatMap((chunk) => JSON.parse(chunk)), all);
});

Deno.test("chunkRegistrations() publishes an empty list as one empty chunk", () => {
  assert.deepEqual(chunkRegistrations([], 900_000), ["[]"]);
  assert.deepEqual(
    chunkRegistrations([registration(1)], 10).length,
    1,
    "one oversized entry still goes out",
  );
});
