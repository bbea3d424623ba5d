/**
 * 300 generated odd policies (wrong types, huge strings, control characters, up to 1,000 traps,
 * unknown fields, deep selector lists) sent to the real API server with kivebpf's webhook, while
 * the real agent runs: each is either refused with a 4xx that names the field, or stored and
 * handled without harm. At the end the agent still arms a control trap and delivers every
 * access of it.
 */
import assert from "node:assert/strict";
import { GROUP } from "../../src/api/mod.ts";
import { randomSource } from "../api/random_policy.ts";
import { AgentProcess, waitFor } from "../integration/_cluster.ts";
import {
  applyPolicy,
  createFixturePod,
  deletePolicy,
  kube,
  NS,
  startContainer,
  withFixture,
} from "../integration/_fixture.ts";

const COUNT = 300;

type Mutation = (spec: Record<string, unknown>, trap: Record<string, unknown>) => void;

/** Ways to spoil a good policy; each generated policy applies one to three of them. */
const MUTATIONS: Mutation[] = [
  (_s, t) => (t.path = 42),
  (_s, t) => (t.create = "yes"),
  (_s, t) => (t.mode = "rwxrwxrwx"),
  (_s, t) => (t.mode = 99999),
  (_s, t) => (t.matchAny = {}),
  (s) => (s.traps = "all of them"),
  (_s, t) => (t.metadata = [1, 2, 3]),
  (_s, t) => (t.path = `/${"a".repeat(5000)}`),
  (_s, t) => (t.metadata = { note: "x".repeat(5000) }),
  (_s, t) => (t.matchAny = [{ containerName: `regex:${"(a|b)*".repeat(300)}` }]),
  (_s, t) => (t.matchAny = [{ containerName: "regex:(a+)+\\1" }]),
  (_s, t) => (t.path = "/odd\u0001name\u007f.txt"),
  (_s, t) => (t.path = "/odd\u0085\u2028.txt"),
  (_s, t) => (t.metadata = { "\u0000": "nul key" }),
  (_s, t) => (t.metadata = { ["k".repeat(400)]: "long key" }),
  (s, t) => (s.traps = Array.from({ length: 1000 }, (_, i) => ({ ...t, path: `/many/${i}.txt` }))),
  (s, t) => (s.traps = Array.from({ length: 200 }, (_, i) => ({ ...t, path: `/some/${i}.txt` }))),
  (s) => (s.unknownField = { nested: true }),
  (_s, t) => (t.surprise = "field"),
  (_s, t) => (t.matchAny = Array.from({ length: 100 }, (_, i) => ({ pod: `p${i}` }))),
  (_s, t) => (t.matchAny = [{ ip: "999.1.1.1/99" }]),
  (_s, t) => (t.matchAny = [{ matchLabels: { "": "v" } }]),
  (_s, t) => (t.callback = "ftp://not-http.example/x"),
  (_s, t) => (t.callback = `http://${"h".repeat(3000)}.example/`),
  (_s, t) => (t.path = "relative/path.txt"),
  (_s, t) => (t.path = "/a/../../etc/shadow"),
  (s) => (s.alertVersion = "v9"),
  (_s, t) => (t.action = "detonate"),
  (_s, t) => (t.content = "c".repeat(70_000)),
  (_s, t) => (t.owner = { uid: -1, gid: 2 ** 40 }),
];

function oddPolicy(next: () => number, index: number) {
  const trap: Record<string, unknown> = {
    path: `/odd-${index}.txt`,
    create: true,
    matchAny: [{ pod: `nobody-${index}` }],
  };
  const spec: Record<string, unknown> = { traps: [trap] };
  const count = 1 + Math.floor(next() * 3);
  for (let i = 0; i < count; i++) MUTATIONS[Math.floor(next() * MUTATIONS.length)](spec, trap);
  const version = next() < 0.5 ? "v1" : "v2alpha1";
  return {
    apiVersion: `${GROUP}/${version}`,
    kind: "KivePolicy",
    metadata: { name: `odd-${index}`, namespace: NS },
    spec,
  };
}

Deno.test("300 odd policies are each refused naming the field or stored harmlessly; the agent still arms a control trap", async () => {
  await withFixture(async (fixture) => {
    const container = await startContainer(fixture);
    await createFixturePod(fixture, {
      name: "control-pod",
      namespace: "default",
      node: "node-a",
      labels: { role: "control" },
      containerName: "app",
      container,
    });
    const agent = new AgentProcess("node-a");
    fixture.agents.push(agent);
    const next = randomSource(20261203);
    let refused = 0;
    let tooLarge = 0;
    const stored: string[] = [];
    fixture.cleanups.push(async () => {
      for (const name of stored) {
        await kube.request("DELETE", `/apis/${GROUP}/v1/namespaces/${NS}/kivepolicies/${name}`);
      }
    });
    for (let i = 0; i < COUNT; i++) {
      const policy = oddPolicy(next, i);
      const version = policy.apiVersion.split("/")[1];
      const response = await kube.request(
        "POST",
        `/apis/${GROUP}/${version}/namespaces/${NS}/kivepolicies`,
        policy,
      );
      const what = `${JSON.stringify(policy.spec).slice(0, 200)} -> ${response.status}`;
      if (response.status === 201) {
        stored.push(policy.metadata.name);
        continue;
      }
      assert.ok(response.status >= 400 && response.status < 500, what);
      refused++;
      // The API server itself refuses bodies over 3 MiB before any validation runs.
      if (response.status === 413) {
        tooLarge++;
        continue;
      }
      const message = String(response.body?.message ?? response.body);
      assert.match(message, /spec/, `the refusal names the field: ${message.slice(0, 300)}`);
    }
    console.log(
      `${COUNT} odd policies: ${refused} refused (${tooLarge} as too large by the API server, ` +
        `the rest naming the field), ${stored.length} stored`,
    );
    assert.ok(refused > COUNT / 2, `${refused} refused`);

    // The agent is still whole: a control policy arms and every access of it is delivered.
    await applyPolicy("odd-control", {
      traps: [{
        path: "/control.txt",
        create: true,
        matchAny: [{ matchLabels: { role: "control" } }],
      }],
    });
    fixture.cleanups.push(() => deletePolicy("odd-control"));
    await waitFor(
      "the control trap armed in the kernel",
      () => agent.leading() && agent.stderrLines.some((l) => l.includes("kernel traps updated")),
      90,
    );
    await waitFor(
      "the control trap planted",
      () => container.execOk(["sh", "-c", "test -f /control.txt"]).then(() => true),
      60,
    );
    await waitFor(
      "a first alert",
      async () => {
        await container.execOk(["cat", "/control.txt"]);
        return agent.alerts().some((a) => a["kive-policy-name"] === "odd-control");
      },
      60,
      1000,
    );
    // Let the alerts of the probing cats arrive before counting from here.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const before = agent.alerts().filter((a) => a["kive-policy-name"] === "odd-control").length;
    for (let i = 0; i < 10; i++) await container.execOk(["cat", "/control.txt"]);
    const control = () => agent.alerts().filter((a) => a["kive-policy-name"] === "odd-control");
    await waitFor("10 more control alerts", () => control().length >= before + 10, 30);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(control().length, before + 10, "made = delivered for the control trap");
  });
});
