/**
 * KivePolicy against a real kube-apiserver and etcd: samples applied with kubectl as users do,
 * the bad-input table through CEL and the webhook, and lossless conversion both ways.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { GROUP, PLURAL } from "../../src/api/mod.ts";
import { BAD_INPUTS } from "../api/bad_inputs.ts";
import { randomSource, randomSpec } from "../api/random_policy.ts";
import { kubectl } from "../_support/kube.ts";
import { installApi } from "./_install.ts";

const api = await installApi();
globalThis.addEventListener("unload", () => {
  // Best effort: the harness also stops the API server after the stage.
  api.close().catch(() => {});
});
const { kube } = api;
const NS = "kivebpf-system";
const path = (version: string, name = "") =>
  `/apis/${GROUP}/${version}/namespaces/${NS}/${PLURAL}${name ? `/${name}` : ""}`;

async function removePolicy(name: string, namespace = NS): Promise<void> {
  // Finalizers from the samples would keep the object; no agent runs in this stage.
  const url = `/apis/${GROUP}/v2alpha1/namespaces/${namespace}/${PLURAL}/${name}`;
  const current = await kube.request("GET", url);
  if (current.status === 404) return;
  if (current.body.metadata.finalizers?.length) {
    await kube.ok("PATCH", url, { metadata: { finalizers: null } }, "application/merge-patch+json");
  }
  await kube.request("DELETE", url);
}

Deno.test("kubectl applies the seed's sample policy verbatim from the repository root", async () => {
  const result = await kubectl(["apply", "-f", "config/samples/kive_v2alpha1_kivepolicy.yaml"]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stdout,
    /kivepolicy\.kivebpf\.san7o\.github\.io\/kive-sample-policy (created|configured)/,
  );
  const stored = await kube.ok("GET", path("v1", "kive-sample-policy"));
  assert.deepEqual(stored.spec, {
    alertVersion: "v1",
    traps: [{
      path: "/secret.txt",
      create: true,
      mode: 444,
      matchAny: [{
        pod: "nginx-pod",
        namespace: "default",
        matchLabels: { "security-level": "high" },
      }],
      metadata: { severity: "medium" },
    }],
  });
  assert.deepEqual(stored.metadata.finalizers, ["kivebpf.san7o.github.io/finalizer"]);
  const v2 = await kube.ok("GET", path("v2alpha1", "kive-sample-policy"));
  assert.equal(v2.spec.traps[0].action, "alert");
  await removePolicy("kive-sample-policy");
});

Deno.test("kubectl applies every sample in config/samples and reads each back through both versions", async () => {
  const dir = new URL("../../config/samples/", import.meta.url);
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".yaml")) names.push(entry.name);
  }
  assert.ok(names.length >= 6, `samples: ${names}`);
  for (const name of names.sort()) {
    const object = parse(await Deno.readTextFile(new URL(name, dir)));
    const result = await kubectl(["apply", "-f", `config/samples/${name}`]);
    assert.equal(result.code, 0, `${name}: ${result.stderr}`);
    for (const version of ["v1", "v2alpha1"]) {
      const got = await kube.ok(
        "GET",
        `/apis/${GROUP}/${version}/namespaces/${object.metadata.namespace}/${PLURAL}/${object.metadata.name}`,
      );
      assert.equal(got.spec.traps.length, object.spec.traps.length, `${name} as ${version}`);
      assert.deepEqual(
        got.spec.traps.map((t: { path: string }) => t.path),
        object.spec.traps.map((t: { path: string }) => t.path),
      );
    }
    await removePolicy(object.metadata.name, object.metadata.namespace);
  }
});

Deno.test("kubectl get kp shows the printer columns", async () => {
  assert.equal(
    (await kubectl(["apply", "-f", "config/samples/kive_v2alpha1_kivepolicy.yaml"])).code,
    0,
  );
  await kube.ok("PATCH", `${path("v2alpha1", "kive-sample-policy")}/status`, {
    status: {
      conditions: [{
        type: "Ready",
        status: "True",
        reason: "Armed",
        message: "1 container",
        lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      }],
      armed: 1,
      nodeCount: 1,
    },
  }, "application/merge-patch+json");
  const result = await kubectl(["get", "kp", "-n", NS, "-o", "wide"]);
  assert.equal(result.code, 0, result.stderr);
  const [header, row] = result.stdout.trim().split("\n");
  assert.deepEqual(header.split(/\s+/), [
    "NAME",
    "ALERTS",
    "READY",
    "ARMED",
    "NODES",
    "REASON",
    "AGE",
  ]);
  assert.deepEqual(row.split(/\s+/).slice(0, 6), [
    "kive-sample-policy",
    "v1",
    "True",
    "1",
    "1",
    "Armed",
  ]);
  await removePolicy("kive-sample-policy");
});

for (const bad of BAD_INPUTS) {
  Deno.test(`the API server rejects ${bad.name} naming ${bad.field}, storing nothing`, async () => {
    const name = `bad-${bad.name.replace(/[^a-z0-9]+/g, "-")}`.slice(0, 60).replace(/-$/, "");
    const object = {
      apiVersion: `${GROUP}/${bad.apiVersion}`,
      kind: "KivePolicy",
      metadata: { name, namespace: NS },
      spec: bad.spec,
    };
    const result = await kubectl(["apply", "-f", "-"], JSON.stringify(object));
    assert.notEqual(result.code, 0, `accepted: ${result.stdout}`);
    const expected = bad.apiMessage ?? bad.message;
    assert.ok(result.stderr.includes(bad.field), `field ${bad.field} not in: ${result.stderr}`);
    assert.ok(result.stderr.includes(expected), `"${expected}" not in: ${result.stderr}`);
    assert.equal((await kube.request("GET", path(bad.apiVersion, name))).status, 404);
  });
}

Deno.test("a rejected update leaves the stored policy as it was", async () => {
  assert.equal(
    (await kubectl(["apply", "-f", "config/samples/kive_v2alpha1_kivepolicy.yaml"])).code,
    0,
  );
  const before = await kube.ok("GET", path("v1", "kive-sample-policy"));
  const broken = structuredClone(before);
  broken.spec.traps[0].matchAny[0].containerName = "regex:([";
  const response = await kube.request("PUT", path("v1", "kive-sample-policy"), broken);
  assert.equal(response.status, 422, JSON.stringify(response.body));
  assert.match(
    response.body.message,
    /spec\.traps\[0\]\.matchAny\[0\]\.containerName: Cannot compile regular expression/,
  );
  const after = await kube.ok("GET", path("v1", "kive-sample-policy"));
  assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion);
  assert.deepEqual(after.spec, before.spec);
  await removePolicy("kive-sample-policy");
});

Deno.test("round trips v2alpha1 -> v1 -> v2alpha1 and v1 -> v2alpha1 -> v1 are lossless for random policies", async () => {
  const seed = Date.now() % 1_000_000;
  const random = randomSource(seed);
  for (let i = 0; i < 12; i++) {
    for (const [first, second] of [["v2alpha1", "v1"], ["v1", "v2alpha1"]] as const) {
      const name = `random-${first}-${i}`;
      const created = await kube.ok("POST", path(first), {
        apiVersion: `${GROUP}/${first}`,
        kind: "KivePolicy",
        metadata: { name, annotations: { "example.org/note": `seed ${seed}` } },
        spec: randomSpec(random, first),
      });
      const asSecond = await kube.ok("GET", path(second, name));
      await kube.ok("PUT", path(second, name), asSecond);
      const back = await kube.ok("GET", path(first, name));
      const context = `seed ${seed}, ${name}`;
      assert.deepEqual(back.spec, created.spec, context);
      assert.deepEqual(back.metadata.annotations, created.metadata.annotations, context);
      await kube.ok("DELETE", path(first, name));
    }
  }
});
