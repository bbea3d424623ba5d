/**
 * Faults under steady accesses (scenarios in _chaos.ts): every access must be delivered (on
 * time or late) or counted lost; none may go unaccounted, none be delivered twice.
 */
import assert from "node:assert/strict";
import { outage, restart, type ScenarioTally, takeover, upgrade } from "./_chaos.ts";

function assertAccounted(t: ScenarioTally): void {
  assert.equal(t.unaccounted, 0, `${t.unaccounted} of ${t.made} accesses unaccounted`);
  assert.equal(t.delivered + t.lost, t.made, "exactly: nothing unaccounted, nothing twice");
}

Deno.test("the API server down for 30 s under steady accesses: every access delivered or counted", async () => {
  assertAccounted(await outage());
});

Deno.test("the only agent SIGKILLed and restarted 3 s later: every access delivered or counted", async () => {
  assertAccounted(await restart());
});

Deno.test("an upgrade (SIGTERM, a new agent at once): every access delivered or counted", async () => {
  assertAccounted(await upgrade());
});

Deno.test("the leader SIGKILLed with a second agent on the kernel waiting: every access delivered or counted", async () => {
  assertAccounted(await takeover());
});
