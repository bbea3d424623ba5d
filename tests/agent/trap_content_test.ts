import assert from "node:assert/strict";
import type { TrapTarget } from "../../src/agent/desired.ts";
import { LabelledSecrets } from "../../src/agent/labelled_secrets.ts";
import { createLogger } from "../../src/agent/log.ts";
import { DECOY_SECRET_LABEL, TrapContent } from "../../src/agent/trap_content.ts";
import type { TrapFileIdentity } from "../../src/containers/mod.ts";
import { decoyId, decoyMark } from "../../src/decoys/mod.ts";

function target(trap: Record<string, unknown>, container = "app"): TrapTarget {
  return {
    key: `uid/0/pod-uid/${container}/containerd://x`,
    policy: { namespace: "ns", name: "p", uid: "policy-uid", generation: 1 },
    alertVersion: "v2alpha1",
    trapIndex: 0,
    trap: {
      path: "/root/.aws/credentials",
      create: true,
      mode: 600,
      matchAny: [{ pod: "pod" }],
      action: "alert",
      ...trap,
    } as never,
    pod: { namespace: "default", name: "pod", uid: "pod-uid" },
    container: { name: container, id: "containerd://x" },
  };
}

function identity(extra: Partial<TrapFileIdentity> = {}): TrapFileIdentity {
  return {
    dev: 0n,
    major: 8,
    minor: 1,
    kernelDev: 8388609,
    ino: 131075n,
    mode: 0o600,
    uid: 0,
    gid: 0,
    size: 0,
    nlink: 1,
    btime: "1764884000123456789",
    mtimeNsec: 0,
    created: false,
    ...extra,
  };
}

function secrets(byName: Record<string, object>) {
  const reads: string[] = [];
  const core = {
    readNamespacedSecret: (request: { name: string; namespace: string }) => {
      reads.push(`${request.namespace}/${request.name}`);
      const secret = request.namespace === "kivebpf-system" ? byName[request.name] : undefined;
      return secret
        ? Promise.resolve(secret)
        : Promise.reject(Object.assign(new Error("HTTP 404"), { code: 404 }));
    },
  };
  const lines: string[] = [];
  const cache = new LabelledSecrets({
    core: core as never,
    namespace: "kivebpf-system",
    label: DECOY_SECRET_LABEL,
    what: "decoy content Secret",
    log: createLogger("debug", (line) => lines.push(line)),
  });
  return { cache, reads, lines };
}

const labelled = { metadata: { labels: { [DECOY_SECRET_LABEL]: "true" } } };

Deno.test("TrapContent takes secretKeyRef content from a labelled Secret only, and says why not", async () => {
  const { cache, reads, lines } = secrets({
    decoys: { ...labelled, data: { env: btoa("DB_PASSWORD=hunter2\n") } },
    tls: { metadata: {}, data: { "tls.key": btoa("the agent's own key") } },
  });
  const content = new TrapContent({ secrets: cache });
  const good = target({ contentFrom: { secretKeyRef: { name: "decoys", key: "env" } } });
  const noKey = target({ contentFrom: { secretKeyRef: { name: "decoys", key: "npmrc" } } });
  const unlabelled = target({ contentFrom: { secretKeyRef: { name: "tls", key: "tls.key" } } });
  const missing = target({ contentFrom: { secretKeyRef: { name: "gone", key: "x" } } });
  await content.prepare([good, noKey, unlabelled, missing]);
  assert.deepEqual(reads, ["kivebpf-system/decoys", "kivebpf-system/tls", "kivebpf-system/gone"]);

  assert.deepEqual(await content.plan(good), { content: "DB_PASSWORD=hunter2\n" });
  const problems = await Promise.all([noKey, unlabelled, missing].map((t) => content.plan(t)));
  assert.deepEqual(problems.map((p) => p.problem?.reason), [
    "SecretKeyMissing",
    "SecretNotLabelled",
    "SecretNotFound",
  ]);
  assert.match(problems[0].problem!.message, /has no key "npmrc"; it has env/);
  assert.match(problems[1].problem!.message, /lacks the label .*decoy-content=true/);
  for (const plan of problems) {
    const make = plan.content as () => string;
    assert.throws(() => make(), "a file cannot be made from an unusable Secret");
  }
  assert.ok(!JSON.stringify(problems).includes("the agent's own key"));
  assert.equal(lines.filter((l) => l.includes("decoy content Secret not used")).length, 2);
});

Deno.test("TrapContent generates a decoy carrying the id of the file it fills", async () => {
  const content = new TrapContent();
  const trap = target({
    contentFrom: { generate: "aws-credentials", options: { profile: "ops" } },
  });
  const plan = await content.plan(trap);
  const file = identity({ created: true });
  const place = {
    policyUid: "policy-uid",
    trapIndex: 0,
    podUid: "pod-uid",
    containerName: "app",
    dev: file.kernelDev,
    ino: "131075",
    btime: file.btime,
  };
  const id = decoyId(place);
  const text = (plan.content as (f: TrapFileIdentity) => string)(file);
  assert.match(text, new RegExp(`^\\[ops\\]\naws_access_key_id = AKIA${id}\n`));
  assert.equal(plan.mark?.(file), decoyMark(place));
  assert.deepEqual(plan.decoyOf?.(file), { id, kind: "aws-credentials" });

  // Found again after a restart: the mark says it is ours; without it, it is not a decoy.
  const found = identity({ mtimeNsec: decoyMark(place) });
  assert.deepEqual(plan.decoyOf?.(found), { id, kind: "aws-credentials" });
  assert.equal(plan.decoyOf?.(identity({ mtimeNsec: (decoyMark(place) + 1) % 1e9 })), undefined);
  assert.equal(plan.decoyOf?.(identity({ ino: 131076n, mtimeNsec: decoyMark(place) })), undefined);

  // Another container of the same pod gets its own id for a file with the same identity.
  const sidecar = await content.plan(target(trap.trap as never, "sidecar"));
  assert.notDeepEqual(sidecar.decoyOf?.(file), plan.decoyOf?.(file));
});

Deno.test("TrapContent passes literal content through and reads no Secret for it", async () => {
  const { cache, reads } = secrets({});
  const content = new TrapContent({ secrets: cache });
  const plain = target({ content: "token=trap\n" });
  await content.prepare([plain]);
  assert.deepEqual(reads, []);
  assert.deepEqual(await content.plan(plain), { content: "token=trap\n" });
});
