import assert from "node:assert/strict";
import { CallbackHeaders, HEADERS_LABEL } from "../../src/agent/callback_headers.ts";
import { createLogger } from "../../src/agent/log.ts";

/** Secrets by name in one namespace; reads of anything else fail as the API server would. */
function secrets(namespace: string, byName: Record<string, object>) {
  const reads: string[] = [];
  const core = {
    readNamespacedSecret: (request: { name: string; namespace: string }) => {
      reads.push(`${request.namespace}/${request.name}`);
      const secret = request.namespace === namespace ? byName[request.name] : undefined;
      return secret ? Promise.resolve(secret) : Promise.reject(new Error("HTTP 404 NotFound"));
    },
  };
  return { core: core as never, reads };
}

Deno.test("CallbackHeaders reads labelled Secrets of the agent's namespace only and forgets the rest", async () => {
  const lines: string[] = [];
  const { core, reads } = secrets("kivebpf-system", {
    good: {
      metadata: { labels: { [HEADERS_LABEL]: "true" } },
      data: { authorization: btoa("Bearer s3cret") },
      stringData: { "x-team": "blue" },
    },
    unlabelled: { metadata: {}, data: { "tls.key": btoa("private") } },
  });
  const headers = new CallbackHeaders({
    core,
    namespace: "kivebpf-system",
    log: createLogger("debug", (line) => lines.push(line)),
  });
  await headers.refresh(["good", "unlabelled", "missing"]);
  assert.deepEqual(headers.get("good"), { authorization: "Bearer s3cret", "x-team": "blue" });
  assert.equal(headers.get("unlabelled"), undefined, "a Secret without the label is never sent");
  assert.equal(headers.get("missing"), undefined);
  assert.deepEqual(reads, [
    "kivebpf-system/good",
    "kivebpf-system/unlabelled",
    "kivebpf-system/missing",
  ]);
  assert.ok(lines.some((l) => l.includes("lacks the label") && l.includes("unlabelled")));
  assert.ok(
    lines.some((l) =>
      l.includes("callback header Secret not used") && l.includes("SecretNotFound")
    ),
  );

  await headers.refresh([]);
  assert.equal(headers.get("good"), undefined, "no trap names it any more");
});
