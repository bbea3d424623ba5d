/**
 * Alert formats through the agent: a v2alpha1 trap with `callbackFormat: falco` POSTs what
 * falcosidekick takes, another with `cloudevents` a CloudEvent, and `--alert-format cloudevents`
 * puts CloudEvents on stdout.
 */
import assert from "node:assert/strict";
import { type CloudEvent, HTTP } from "cloudevents";
import { GROUP } from "../../src/api/mod.ts";
import { kubectl } from "../_support/kube.ts";
import { AgentProcess, waitFor } from "./_cluster.ts";
import { appPod, deletePolicy, NS, startReceiver, withFixture } from "./_fixture.ts";

Deno.test("callbackFormat falco and cloudevents shape each trap's callback; --alert-format shapes stdout", async () => {
  await withFixture(async (fixture) => {
    const { received, url } = startReceiver(fixture);
    const container = await appPod(fixture, "formats-pod");
    const agent = new AgentProcess("node-a", ["--alert-format", "cloudevents"]);
    fixture.agents.push(agent);
    const matchAny = [{ pod: "formats-pod" }];
    const policy = {
      apiVersion: `${GROUP}/v2alpha1`,
      kind: "KivePolicy",
      metadata: { name: "formats-policy", namespace: NS, finalizers: [`${GROUP}/finalizer`] },
      spec: {
        alertVersion: "v2alpha1",
        traps: [
          {
            path: "/falco.txt",
            create: true,
            callback: url("/falco"),
            callbackFormat: "falco",
            matchAny,
          },
          {
            path: "/ce.txt",
            create: true,
            callback: url("/ce"),
            callbackFormat: "cloudevents",
            matchAny,
          },
          { path: "/stdout.txt", create: true, matchAny, metadata: { severity: "critical" } },
        ],
      },
    };
    const applied = await kubectl(["apply", "-f", "-"], JSON.stringify(policy));
    assert.equal(applied.code, 0, applied.stderr);
    fixture.cleanups.push(() => deletePolicy("formats-policy"));
    await waitFor(
      "three traps armed",
      () =>
        agent.stderrLines.some((l) =>
          l.includes("kernel traps updated") && l.includes('"inodes":3')
        ),
    );
    for (const path of ["/falco.txt", "/ce.txt", "/stdout.txt"]) {
      await container.execOk(["cat", path]);
    }

    const falco = await waitFor("the falco POST", () => received.find((r) => r.path === "/falco"));
    const payload = falco.body as unknown as Record<string, unknown>;
    assert.equal(falco.headers.get("content-type"), "application/json");
    assert.equal(payload.rule, "kivebpf trap file accessed");
    assert.match(payload.time as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const fields = payload.output_fields as Record<string, unknown>;
    assert.equal(fields["k8s.pod.name"], "formats-pod");
    assert.equal(fields["fd.name"], "/falco.txt");
    assert.equal(fields["proc.name"], "cat");
    assert.equal(fields["proc.cmdline"], "cat /falco.txt");

    const ce = await waitFor("the CloudEvents POST", () => received.find((r) => r.path === "/ce"));
    assert.equal(ce.headers.get("content-type"), "application/cloudevents+json");
    const event = HTTP.toEvent({
      headers: Object.fromEntries(ce.headers),
      body: JSON.stringify(ce.body),
    }) as CloudEvent<{ metadata: { path: string } }>;
    assert.equal(event.validate(), true);
    assert.equal(event.data?.metadata.path, "/ce.txt");
    assert.equal(event.id, ce.headers.get("kive-alert-id"));

    const line = await waitFor("the CloudEvent on stdout", () =>
      agent.stdoutLines.map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return undefined;
        }
      }).find((o) => o?.specversion === "1.0"));
    assert.equal(line.data.metadata.path, "/stdout.txt");
    assert.equal(line.type, "io.github.san7o.kivebpf.trap.accessed");
  });
});
