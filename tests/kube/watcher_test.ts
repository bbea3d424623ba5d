/**
 * ResourceWatcher against a real API server: a watch never goes deaf. After more than 30 s of
 * silence (client-node's own watch stopped listening there under Deno), after the path to the
 * API server is cut and restored, and after it goes silent (a half-open connection), a new
 * object reaches the cache within seconds, with the periodic relist set far away so that it
 * cannot be what saves the test. During the outage the cache keeps what it had.
 */
import assert from "node:assert/strict";
import { CoreV1Api, type V1ConfigMap } from "@kubernetes/client-node";
import { loadKubeConfig, ResourceWatcher } from "../../src/kube/mod.ts";
import { Cable, kubeConfigThrough } from "../_support/cable.ts";
import { waitFor } from "../_support/wait.ts";

const NS = "default";

function directApi(): { core: CoreV1Api; server: URL } {
  const config = loadKubeConfig(Deno.env.get("KUBECONFIG"));
  return {
    core: config.makeApiClient(CoreV1Api),
    server: new URL(config.getCurrentCluster()!.server),
  };
}

/** A watcher of the test's ConfigMaps (label `watch-test=<run>`) that reaches the server through `cable`. */
function watcherThrough(cable: Cable, run: string) {
  const config = kubeConfigThrough(cable);
  const core = config.makeApiClient(CoreV1Api);
  const labelSelector = `watch-test=${run}`;
  const seen = { changes: 0, errors: [] as string[] };
  const watcher = new ResourceWatcher<V1ConfigMap>(config, {
    path: `/api/v1/namespaces/${NS}/configmaps`,
    labelSelector,
    list: () => core.listNamespacedConfigMap({ namespace: NS, labelSelector }),
    onChange: () => seen.changes++,
    onError: (error) => seen.errors.push(String(error)),
    relistSeconds: 3600,
    backoffMs: 200,
    listTimeoutMs: 3_000,
    watch: { minTimeoutSeconds: 4, maxTimeoutSeconds: 6, graceSeconds: 2 },
  });
  const names = () => watcher.list().map((o) => o.metadata?.name ?? "").sort();
  return { watcher, seen, names };
}

async function create(core: CoreV1Api, run: string, name: string): Promise<void> {
  await core.createNamespacedConfigMap({
    namespace: NS,
    body: { metadata: { name: `${run}-${name}`, labels: { "watch-test": run } } },
  });
}

async function cleanup(core: CoreV1Api, run: string): Promise<void> {
  await core.deleteCollectionNamespacedConfigMap({
    namespace: NS,
    labelSelector: `watch-test=${run}`,
  }).catch(() => {});
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("a watch silent for 35 s still hears the next object within seconds", async () => {
  const { core, server } = directApi();
  const run = `quiet-${Date.now()}`;
  await using cable = new Cable(server);
  const { watcher, names } = watcherThrough(cable, run);
  try {
    await create(core, run, "before");
    await watcher.start();
    assert.deepEqual(names(), [`${run}-before`]);
    // Longer than client-node's 30 s idle abort, and several server-side watch timeouts.
    await sleep(35_000);
    await create(core, run, "after-silence");
    await waitFor(
      "the object created after 35 s of silence in the cache",
      () => names().includes(`${run}-after-silence`),
      10,
    );
  } finally {
    await watcher.stop();
    await cleanup(core, run);
  }
});

Deno.test("after the API server is cut off and back, the watch resumes and the cache was kept", async () => {
  const { core, server } = directApi();
  const run = `cut-${Date.now()}`;
  await using cable = new Cable(server);
  const { watcher, seen, names } = watcherThrough(cable, run);
  try {
    await create(core, run, "before");
    await watcher.start();
    cable.cut();
    await create(core, run, "during-outage");
    await sleep(12_000);
    // Errors were reported, and a failed relist did not empty the cache.
    assert.ok(seen.errors.length > 0, "the outage is reported through onError");
    assert.deepEqual(names(), [`${run}-before`]);
    cable.restore();
    await waitFor(
      "the object created during the outage in the cache",
      () => names().includes(`${run}-during-outage`),
      15,
    );
    await create(core, run, "after-outage");
    await waitFor(
      "the object created after the outage in the cache",
      () => names().includes(`${run}-after-outage`),
      10,
    );
  } finally {
    await watcher.stop();
    await cleanup(core, run);
  }
});

Deno.test("a silent connection (no FIN, no data) is abandoned and the watch reconnects", async () => {
  const { core, server } = directApi();
  const run = `silent-${Date.now()}`;
  await using cable = new Cable(server);
  const { watcher, names } = watcherThrough(cable, run);
  try {
    await watcher.start();
    // Open connections are dropped and new ones hang: the watch must give up on its own.
    cable.silence();
    await sleep(3_000);
    cable.restore();
    await create(core, run, "after-silence");
    await waitFor(
      "the object created after the silent spell in the cache",
      () => names().includes(`${run}-after-silence`),
      20,
    );
  } finally {
    await watcher.stop();
    await cleanup(core, run);
  }
});

Deno.test("with a signature, an update that leaves it the same wakes nobody, yet the cache has it", async () => {
  const { core } = directApi();
  const run = `signature-${Date.now()}`;
  const labelSelector = `watch-test=${run}`;
  let changes = 0;
  const watcher = new ResourceWatcher<V1ConfigMap>(loadKubeConfig(Deno.env.get("KUBECONFIG")), {
    path: `/api/v1/namespaces/${NS}/configmaps`,
    labelSelector,
    list: () => core.listNamespacedConfigMap({ namespace: NS, labelSelector }),
    onChange: () => changes++,
    // What the consumer acts on: the data, not the annotations (as status is to the agent).
    signature: (object) => JSON.stringify(object.data ?? {}),
  });
  try {
    await create(core, run, "one");
    await watcher.start();
    changes = 0;
    const name = `${run}-one`;
    const note = (text: string) =>
      core.replaceNamespacedConfigMap({
        name,
        namespace: NS,
        body: {
          metadata: { name, labels: { "watch-test": run }, annotations: { note: text } },
        },
      });
    await note("first");
    await waitFor(
      "the annotation in the cache",
      () => watcher.list()[0]?.metadata?.annotations?.note === "first",
    );
    await sleep(300);
    assert.equal(changes, 0, "an update the signature ignores calls no onChange");
    await core.replaceNamespacedConfigMap({
      name,
      namespace: NS,
      body: { metadata: { name, labels: { "watch-test": run } }, data: { k: "v" } },
    });
    await waitFor("a data change to call onChange", () => changes === 1);
    await core.deleteNamespacedConfigMap({ name, namespace: NS });
    await waitFor("the deletion to call onChange", () => changes === 2);
  } finally {
    await watcher.stop();
    await cleanup(core, run);
  }
});
