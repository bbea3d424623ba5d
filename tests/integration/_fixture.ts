/**
 * The fixture of the agent integration suites: the API server with the CRDs installed,
 * policies, pods, containers and agents that are always cleaned up.
 *
 * @module
 */
import assert from "node:assert/strict";
import { GROUP, PLURAL } from "../../src/api/mod.ts";
import { RuncContainer } from "../containers/_runc.ts";
import { kubectl } from "../_support/kube.ts";
import { installApi } from "../apiserver/_install.ts";
import { AgentProcess, createPod, ensureNamespace, waitFor } from "./_cluster.ts";

const api = await installApi();
/** The test API server's client. */
export const { kube } = api;
await ensureNamespace(kube, "default");
await ensureNamespace(kube, "kivebpf-system");
/** This machine's kernel id (boot id). */
export const KERNEL_ID = (await Deno.readTextFile("/proc/sys/kernel/random/boot_id")).trim();
/** The agents' namespace. */
export const NS = "kivebpf-system";
/** The API path of a KivePolicy in {@linkcode NS}. */
export const policyPath = (name: string) =>
  `/apis/${GROUP}/v2alpha1/namespaces/${NS}/${PLURAL}/${name}`;

/**
 * A bpffs of the test process's own where the agents pin their programs and maps (as they
 * would under /sys/fs/bpf on a node): traps outlive a killed agent here as they do there.
 * Unmounting it at the end releases whatever the last agents left pinned.
 */
export const PIN_ROOT = await Deno.makeTempDir({ prefix: "kivebpf-agent-bpffs-" });
{
  const mount = await new Deno.Command("mount", { args: ["-t", "bpf", "bpf", PIN_ROOT] })
    .output();
  assert.equal(mount.code, 0, `mount -t bpf: ${new TextDecoder().decode(mount.stderr)}`);
}
AgentProcess.pinDir = PIN_ROOT;

globalThis.addEventListener("unload", () => {
  api.close().catch(() => {});
  new Deno.Command("umount", { args: ["-l", PIN_ROOT] }).outputSync();
  try {
    Deno.removeSync(PIN_ROOT);
  } catch {
    // still busy: left in /tmp
  }
});

/** Applies a KivePolicy (v1) in {@linkcode NS}, with the agent's finalizer by default. */
export async function applyPolicy(
  name: string,
  spec: Record<string, unknown>,
  finalizer = true,
): Promise<void> {
  const object = {
    apiVersion: `${GROUP}/v1`,
    kind: "KivePolicy",
    metadata: { name, namespace: NS, finalizers: finalizer ? [`${GROUP}/finalizer`] : [] },
    spec,
  };
  const result = await kubectl(["apply", "-f", "-"], JSON.stringify(object));
  assert.equal(result.code, 0, result.stderr);
}

/** Deletes a policy and waits until the agent released its finalizer. */
export async function deletePolicy(name: string): Promise<void> {
  await kube.request("DELETE", policyPath(name));
  await waitFor(
    `policy ${name} to be gone (finalizer released by the agent)`,
    async () => (await kube.request("GET", policyPath(name))).status === 404,
  );
}

/**
 * A node's report on a policy (its `KiveNodeReport`), found as a user would: by the policy's
 * label; undefined while there is none.
 */
export async function nodeStatus(policy: string, node: string, namespace = NS) {
  const list = await kube.ok(
    "GET",
    `/apis/${GROUP}/v2alpha1/namespaces/${namespace}/kivenodereports?labelSelector=${
      encodeURIComponent(`${GROUP}/policy=${policy}`)
    }`,
  );
  // deno-lint-ignore no-explicit-any
  return (list.items ?? []).find((report: any) => report.node === node);
}

/** lstat of a path inside a container, from the host. */
export async function hostStat(
  container: RuncContainer,
  path: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(`/proc/${container.pid}/root${path}`);
  } catch {
    return undefined;
  }
}

/** Runs `fn` with containers, agents and cleanups that are always torn down. */
export async function withFixture(
  fn: (
    fixture: {
      containers: RuncContainer[];
      agents: AgentProcess[];
      cleanups: (() => Promise<unknown>)[];
    },
  ) => Promise<void>,
): Promise<void> {
  const fixture = {
    containers: [] as RuncContainer[],
    agents: [] as AgentProcess[],
    cleanups: [] as (() => Promise<unknown>)[],
  };
  // The agents' hand-over ConfigMaps of an earlier test (its agents were killed) would make
  // this test's lone agent think its kernel shared.
  await dropRegistrationConfigMaps();
  try {
    await fn(fixture);
  } finally {
    for (const cleanup of fixture.cleanups.reverse()) await cleanup().catch(() => {});
    for (const agent of fixture.agents) await agent.stop("SIGKILL");
    for (const container of fixture.containers) await container[Symbol.asyncDispose]();
    await dropRegistrationConfigMaps();
  }
}

/** Deletes every registration and armed-set ConfigMap in the agents' namespace. */
async function dropRegistrationConfigMaps(): Promise<void> {
  await kube.request(
    "DELETE",
    `/api/v1/namespaces/kivebpf-system/configmaps?labelSelector=${
      encodeURIComponent(`${GROUP}/kernel-id`)
    }`,
  );
}

/** Starts a runc container that the fixture removes. */
export async function startContainer(
  fixture: { containers: RuncContainer[] },
): Promise<RuncContainer> {
  const container = await RuncContainer.start();
  fixture.containers.push(container);
  return container;
}

/** Creates a Pod object for a container and deletes it when the fixture ends. */
export async function createFixturePod(
  fixture: { cleanups: (() => Promise<unknown>)[] },
  options: Parameters<typeof createPod>[1],
): ReturnType<typeof createPod> {
  const pod = await createPod(kube, options);
  fixture.cleanups.push(() =>
    kube.request(
      "DELETE",
      `/api/v1/namespaces/${options.namespace}/pods/${options.name}?gracePeriodSeconds=0`,
    )
  );
  return pod;
}

/** Waits a moment and checks no (further) alert came: the absence of an event needs a wait. */
export async function assertNoNewAlerts(
  agents: AgentProcess[],
  before: number,
  why: string,
): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const now = agents.reduce((sum, a) => sum + a.alerts().length, 0);
  assert.equal(
    now,
    before,
    `${why}: unexpected alerts ${JSON.stringify(agents.flatMap((a) => a.alerts().slice(before)))}`,
  );
}

/**
 * Creates the Pod object of a one-container pod `name` in `default` on node-a, whose container
 * "app" is `container` (or a new runc container).
 *
 * @returns The container.
 */
export async function appPod(
  fixture: { containers: RuncContainer[]; cleanups: (() => Promise<unknown>)[] },
  name: string,
  container?: RuncContainer,
): Promise<RuncContainer> {
  const app = container ?? await startContainer(fixture);
  await createFixturePod(fixture, {
    name,
    namespace: "default",
    node: "node-a",
    containerName: "app",
    container: app,
  });
  return app;
}

/** A request a {@linkcode startReceiver} got. */
export interface ReceivedAlert {
  path: string;
  headers: Headers;
  body: { KiveAlert: Record<string, unknown> };
}

/**
 * An HTTP server on loopback that records every alert POSTed to it, shut down by the fixture.
 *
 * @returns What it received, and the URL of a path on it.
 */
export function startReceiver(
  fixture: { cleanups: (() => Promise<unknown>)[] },
): { received: ReceivedAlert[]; url: (path: string) => string } {
  const received: ReceivedAlert[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      received.push({ path, headers: request.headers, body: await request.json() });
      return new Response("ok");
    },
  );
  fixture.cleanups.push(() => server.shutdown());
  return { received, url: (path) => `http://127.0.0.1:${server.addr.port}${path}` };
}
