/**
 * Generated decoys and Secret content end to end: a real API server, runc containers that Pod
 * objects point at, agents run from mod.ts, the real kernel, and the real tools that read the
 * planted files.
 */
import assert from "node:assert/strict";
import { runCommand } from "../../scripts/_run.ts";
import { GROUP } from "../../src/api/mod.ts";
import { kubectl } from "../_support/kube.ts";
import { AgentProcess, waitFor } from "./_cluster.ts";
import { appPod, deletePolicy, kube, nodeStatus, NS, withFixture } from "./_fixture.ts";

const DECOY_LABEL = `${GROUP}/decoy-content`;

async function applyV2(name: string, traps: Record<string, unknown>[]): Promise<void> {
  const policy = {
    apiVersion: `${GROUP}/v2alpha1`,
    kind: "KivePolicy",
    metadata: { name, namespace: NS, finalizers: [`${GROUP}/finalizer`] },
    spec: { alertVersion: "v2alpha1", traps },
  };
  const applied = await kubectl(["apply", "-f", "-"], JSON.stringify(policy));
  assert.equal(applied.code, 0, applied.stderr);
}

interface Decoy {
  pod: string;
  container: string;
  id: string;
  kind: string;
}

/** The decoys node-a reports for each trap index, once `armed` containers are armed. */
async function reportedDecoys(policy: string, armed: number): Promise<Map<number, Decoy[]>> {
  const report = await waitFor(`node-a to report ${armed} armed with their decoys`, async () => {
    const entry = await nodeStatus(policy, "node-a");
    const listed = (entry?.traps ?? []).reduce(
      (sum: number, trap: { decoys?: unknown[] }) => sum + (trap.decoys?.length ?? 0),
      0,
    );
    return entry?.armed === armed && listed === armed ? entry : undefined;
  }, 60);
  return new Map(
    report.traps.map((trap: { index: number; decoys: Decoy[] }) => [trap.index, trap.decoys]),
  );
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function run(command: string, args: string[], stdin = ""): Promise<string> {
  const result = await runCommand(command, args, { stdin });
  assert.equal(result.code, 0, `${command} ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

Deno.test("generate traps plant parseable decoys with an id per pod that alerts carry, and an agent restart changes no file", async () => {
  await withFixture(async (fixture) => {
    const pods = {
      "decoy-a": await appPod(fixture, "decoy-a"),
      "decoy-b": await appPod(fixture, "decoy-b"),
    };
    let agent = new AgentProcess("node-a");
    fixture.agents.push(agent);
    const matchAny = [{ pod: "decoy-a" }, { pod: "decoy-b" }];
    await applyV2("decoy-policy", [
      {
        // No create: contentFrom implies it.
        path: "/root/.ssh/id_ed25519",
        mode: 600,
        contentFrom: { generate: "ssh-private-key", options: { host: "bastion.prod" } },
        matchAny,
      },
      {
        path: "/root/.aws/credentials",
        create: true,
        mode: 600,
        contentFrom: { generate: "aws-credentials" },
        matchAny,
      },
    ]);
    fixture.cleanups.push(() => deletePolicy("decoy-policy"));
    const decoys = await reportedDecoys("decoy-policy", 4);
    const idOf = (index: number, pod: string) => decoys.get(index)!.find((d) => d.pod === pod)!.id;
    const ids = [0, 1].flatMap((index) => Object.keys(pods).map((pod) => idOf(index, pod)));
    assert.equal(new Set(ids).size, 4, `one id per (trap, pod): ${ids}`);
    for (const id of ids) assert.match(id, /^[A-Z2-7]{16}$/);
    assert.deepEqual(decoys.get(0)!.map((d) => d.kind), ["ssh-private-key", "ssh-private-key"]);
    // The lookup docs/DECOYS.md gives, from a leaked id back to its pod.
    const listed = await kubectl(["get", "knr", "-A", "-o", "json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const traced = await run("jq", [
      "-r",
      "--arg",
      "id",
      idOf(1, "decoy-b"),
      ".items[] | .node as $node | .traps[] | .path as $path | .decoys[]? | " +
      'select(.id == $id) | "\\(.namespace)/\\(.pod) container \\(.container) on \\($node): \\($path)"',
    ], listed.stdout);
    assert.equal(traced, "default/decoy-b container app on node-a: /root/.aws/credentials\n");

    // Each file is what the real tool reads, with the id the status reports. (These host
    // reads are accesses too: the alerts below are picked by their process and pod.)
    const hashes: string[] = [];
    for (const [pod, container] of Object.entries(pods)) {
      const key = `/proc/${container.pid}/root/root/.ssh/id_ed25519`;
      const publicKey = await run("ssh-keygen", ["-y", "-f", key]);
      assert.match(publicKey, new RegExp(`-${idOf(0, pod).toLowerCase()}@bastion\\.prod\\n$`));
      const aws = `/proc/${container.pid}/root/root/.aws/credentials`;
      assert.match(
        await Deno.readTextFile(aws),
        new RegExp(`aws_access_key_id = AKIA${idOf(1, pod)}\\n`),
      );
      hashes.push(await sha256(key), await sha256(aws));
    }

    const alertOf = (pod: string, path: string) => () =>
      agent.alerts().find((a) => {
        const alert = a as {
          pod: { name: string };
          process: { binary: string };
          metadata: { path: string };
        };
        return alert.pod.name === pod && alert.process.binary === "cat" &&
          alert.metadata.path === path;
      });
    await pods["decoy-a"].execOk(["cat", "/root/.aws/credentials"]);
    const alert = await waitFor(
      "the alert of cat in decoy-a",
      alertOf("decoy-a", "/root/.aws/credentials"),
    );
    assert.deepEqual(alert.decoy, { id: idOf(1, "decoy-a"), kind: "aws-credentials" });
    assert.equal(Object.keys(alert).at(-1), "decoy");

    // A crash and a new agent: the files stay exactly as they were, the ids stay the same.
    await agent.stop("SIGKILL");
    agent = new AgentProcess("node-a");
    fixture.agents.push(agent);
    await waitFor(
      "the new agent to arm the traps",
      () =>
        agent.stderrLines.some((l) =>
          l.includes("kernel traps updated") && l.includes('"inodes":4')
        ),
      60,
    );
    await pods["decoy-b"].execOk(["cat", "/root/.ssh/id_ed25519"]);
    const after = await waitFor(
      "the alert of cat in decoy-b",
      alertOf("decoy-b", "/root/.ssh/id_ed25519"),
    );
    assert.deepEqual(after.decoy, { id: idOf(0, "decoy-b"), kind: "ssh-private-key" });
    const again = await reportedDecoys("decoy-policy", 4);
    assert.deepEqual(again, decoys, "the restarted agent reports the same decoys");
    const hashesAfter: string[] = [];
    for (const container of Object.values(pods)) {
      hashesAfter.push(
        await sha256(`/proc/${container.pid}/root/root/.ssh/id_ed25519`),
        await sha256(`/proc/${container.pid}/root/root/.aws/credentials`),
      );
    }
    assert.deepEqual(hashesAfter, hashes, "no file was rewritten");
  });
});

Deno.test("secretKeyRef plants a labelled Secret's value; an unlabelled or missing Secret or key is reported and blocks no other trap", async () => {
  await withFixture(async (fixture) => {
    const secrets = [
      { name: "decoy-env", labelled: true, data: { env: "DB_PASSWORD=s3cr3t-decoy\n" } },
      { name: "decoy-unlabelled", labelled: false, data: { env: "FROM_UNLABELLED=1\n" } },
    ];
    for (const secret of secrets) {
      await kube.request("DELETE", `/api/v1/namespaces/${NS}/secrets/${secret.name}`);
      await kube.ok("POST", `/api/v1/namespaces/${NS}/secrets`, {
        metadata: { name: secret.name, labels: secret.labelled ? { [DECOY_LABEL]: "true" } : {} },
        stringData: secret.data,
      });
      fixture.cleanups.push(() =>
        kube.request("DELETE", `/api/v1/namespaces/${NS}/secrets/${secret.name}`)
      );
    }
    const container = await appPod(fixture, "secret-pod");
    const agent = new AgentProcess("node-a");
    fixture.agents.push(agent);
    const matchAny = [{ pod: "secret-pod" }];
    const fromSecret = (path: string, name: string, key: string) => ({
      path,
      create: true,
      contentFrom: { secretKeyRef: { name, key } },
      matchAny,
    });
    await applyV2("secret-content", [
      fromSecret("/app/.env", "decoy-env", "env"),
      fromSecret("/app/unlabelled.env", "decoy-unlabelled", "env"),
      fromSecret("/app/nokey.env", "decoy-env", "npmrc"),
      fromSecret("/app/gone.env", "no-such-secret", "env"),
      { path: "/app/.pgpass", create: true, contentFrom: { generate: "pgpass" }, matchAny },
    ]);
    fixture.cleanups.push(() => deletePolicy("secret-content"));
    const report = await waitFor("two armed and three reasons", async () => {
      const entry = await nodeStatus("secret-content", "node-a");
      return entry?.armed === 2 && entry?.notArmed === 3 ? entry : undefined;
    }, 60);
    const reasons = Object.fromEntries(
      report.traps.map((
        trap: { index: number; problems?: { reason: string; message: string }[] },
      ) => [
        trap.index,
        trap.problems?.map((p) => p.reason) ?? [],
      ]),
    );
    assert.deepEqual(reasons, {
      0: [],
      1: ["SecretNotLabelled"],
      2: ["SecretKeyMissing"],
      3: ["SecretNotFound"],
      4: [],
    });
    const problem = report.traps[1].problems[0].message;
    assert.match(problem, /kubectl label secret -n kivebpf-system decoy-unlabelled/);
    const root = `/proc/${container.pid}/root`;
    assert.equal(await Deno.readTextFile(`${root}/app/.env`), "DB_PASSWORD=s3cr3t-decoy\n");
    for (const path of ["/app/unlabelled.env", "/app/nokey.env", "/app/gone.env"]) {
      await assert.rejects(Deno.lstat(`${root}${path}`), Deno.errors.NotFound, `${path} planted`);
    }
    assert.ok(!JSON.stringify(report).includes("FROM_UNLABELLED"), "no Secret value in status");

    // Labelled later: that trap is planted at the next round, with the Secret's value.
    const labelled = await kubectl([
      "label",
      "secret",
      "-n",
      NS,
      "decoy-unlabelled",
      `${DECOY_LABEL}=true`,
    ]);
    assert.equal(labelled.code, 0, labelled.stderr);
    await waitFor("the relabelled Secret's trap to be armed", async () => {
      const entry = await nodeStatus("secret-content", "node-a");
      return entry?.armed === 3;
    }, 90);
    assert.equal(await Deno.readTextFile(`${root}/app/unlabelled.env`), "FROM_UNLABELLED=1\n");
  });
});
