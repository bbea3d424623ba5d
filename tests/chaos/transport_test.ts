/**
 * The API transport survives the API server stopping under requests in flight: a child process
 * lists Leases in parallel loops while the test's API server is stopped and started again. With
 * client-node's own undici transport, Deno 2.9.6 crashed here (a segmentation fault, 2 of 2
 * runs); with kivebpf's (Deno's fetch) the child must exit 0, having seen failures during the
 * outage and successes after it. `LIBRARY_TRANSPORT=1` runs the child on the old transport.
 */
import assert from "node:assert/strict";
import { apiserver } from "./_chaos.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("API calls in flight when the API server stops fail as errors and resume after; the process does not crash", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./_request_loop.ts", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await sleep(3000);
  await apiserver("stop-apiserver");
  await sleep(1000);
  await apiserver("start-apiserver");
  await sleep(3000);
  await child.stdin.close();
  const { code, signal, stdout, stderr } = await child.output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, `exit ${code} signal ${signal}\n${new TextDecoder().decode(stderr)}`);
  const [, ok, failed, after] = /ok=(\d+) failed=(\d+) okAfterFailure=(\d+)/.exec(text) ?? [];
  assert.ok(Number(ok) > 0, `calls before the outage succeed: ${text}`);
  assert.ok(Number(failed) > 0, `calls during the outage fail as errors: ${text}`);
  assert.ok(Number(after) > 0, `calls after the outage succeed again: ${text}`);
});
