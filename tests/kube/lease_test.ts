/**
 * Leader election against a real API server, with a real TCP path between one candidate and
 * the server that the test cuts: leadership fails open (a leader that cannot reach the API
 * server keeps leading until it sees another holder), a dead holder is replaced, and an API
 * server that accepts connections but never answers stalls neither the campaign nor stop().
 */
import assert from "node:assert/strict";
import { CoordinationV1Api } from "@kubernetes/client-node";
import { LeaseElector, loadKubeConfig } from "../../src/kube/mod.ts";
import { waitFor } from "../_support/wait.ts";
import { apply } from "../apiserver/_install.ts";
import { TestKube } from "../_support/kube.ts";
import { Cable, kubeConfigThrough } from "../_support/cable.ts";

const NS = "lease-test";

function directApi(): { api: CoordinationV1Api; server: URL } {
  const config = loadKubeConfig(Deno.env.get("KUBECONFIG"));
  return {
    api: config.makeApiClient(CoordinationV1Api),
    server: new URL(config.getCurrentCluster()!.server),
  };
}

/** A client whose every request goes through `cable`. */
function apiThrough(cable: Cable): CoordinationV1Api {
  return kubeConfigThrough(cable).makeApiClient(CoordinationV1Api);
}

interface Candidate {
  elector: LeaseElector;
  changes: boolean[];
  takeovers: { seconds: number; previousHolder?: string }[];
  errors: number;
}

function candidate(api: CoordinationV1Api, name: string, identity: string): Candidate {
  const c: Candidate = { changes: [], takeovers: [], errors: 0 } as unknown as Candidate;
  c.elector = new LeaseElector(api, {
    namespace: NS,
    name,
    identity,
    leaseSeconds: 3,
    retrySeconds: 1,
    onChange: (leading) => c.changes.push(leading),
    onError: () => c.errors++,
    onTakeover: (t) => c.takeovers.push(t),
  });
  return c;
}

const kube = await TestKube.fromEnv();
await apply(kube, `/api/v1/namespaces/${NS}`, {
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name: NS },
});

Deno.test("a leader cut off from the API server keeps leading until it sees the new holder", async () => {
  const { api, server } = directApi();
  await using cable = new Cable(server);
  const a = candidate(apiThrough(cable), "cut-off", "agent-a");
  const b = candidate(api, "cut-off", "agent-b");
  await a.elector.start();
  assert.equal(a.elector.leading, true);
  await b.elector.start();
  assert.equal(b.elector.leading, false);
  try {
    cable.cut();
    await waitFor("agent-b to take the expired Lease", () => b.elector.leading, 30);
    assert.ok(a.errors > 0, "agent-a's renewals failed");
    assert.equal(a.elector.leading, true, "agent-a fails open: still leading, still reporting");
    assert.deepEqual(a.changes, [true], "agent-a never stepped down while cut off");
    assert.equal(b.takeovers.length, 1);
    assert.equal(b.takeovers[0].previousHolder, "agent-a");
    assert.ok(b.takeovers[0].seconds >= 3, `took over after ${b.takeovers[0].seconds} s`);

    cable.restore();
    await waitFor("agent-a to see agent-b and step down", () => !a.elector.leading, 30);
    assert.deepEqual(a.changes, [true, false]);
    assert.equal(b.elector.leading, true);
  } finally {
    await a.elector.stop();
    await b.elector.stop();
  }
});

Deno.test("a leader that stops gracefully hands the Lease over at once", async () => {
  const { api } = directApi();
  const a = candidate(api, "handover", "agent-a");
  const b = candidate(api, "handover", "agent-b");
  await a.elector.start();
  await b.elector.start();
  try {
    await a.elector.stop();
    await waitFor("agent-b to take the released Lease", () => b.elector.leading, 10);
    assert.equal(b.takeovers.length, 1);
    assert.equal(b.takeovers[0].previousHolder, undefined, "released: no holder left");
  } finally {
    await b.elector.stop();
  }
});

Deno.test("an API server that never answers stalls neither the campaign nor stop()", async () => {
  const { server } = directApi();
  await using cable = new Cable(server);
  const a = candidate(apiThrough(cable), "silent", "agent-a");
  await a.elector.start();
  assert.equal(a.elector.leading, true);
  cable.silence();
  // Several retry intervals: attempts are given up on after half a lease duration each.
  await new Promise((resolve) => setTimeout(resolve, 4000));
  assert.equal(a.elector.leading, true, "fails open while the API server hangs");
  await a.elector.stop(); // resolves although the release request never gets an answer
  assert.equal(a.elector.leading, false);
});
