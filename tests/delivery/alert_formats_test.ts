/**
 * The falco and cloudevents shapes, checked field by field, through a real HTTP callback and on
 * stdout, and read back by the CloudEvents SDK for JavaScript, as a receiver would.
 */
import assert from "node:assert/strict";
import { type CloudEvent, HTTP } from "cloudevents";
import {
  alertPayload,
  AlertSink,
  CLOUDEVENT_TYPES,
  type KiveAlertV2alpha1,
  type KiveLossAlert,
} from "../../src/delivery/mod.ts";
import { memoryWritable, recordingServer, sampleAlert } from "./_support.ts";

function v2Alert(): KiveAlertV2alpha1 {
  const v1 = sampleAlert();
  return {
    ...v1,
    "kive-alert-version": "v2alpha1",
    metadata: { ...v1.metadata, access: "read", device: 2049, "trap-index": 0 },
    "custom-metadata": { severity: "high" },
    pod: {
      ...v1.pod,
      container: { id: "containerd://0c37a1b2c3d4e5f60718293a4b5c6d7e", name: "nginx" },
      uid: "pod-uid",
    },
    process: {
      ...v1.process,
      ppid: 9,
      exe: "/usr/bin/cat",
      argv: ["cat", "/secret.txt"],
      "cgroup-id": "77",
      "mount-ns": 4026532000,
      truncated: [],
    },
    "kive-policy-namespace": "kivebpf-system",
    "timestamp-ns": "1754153479123456789",
    count: 1,
    action: "alerted",
    "alert-id": "alert-9",
    decoy: { id: "KIVE234567ABCDEF", kind: "aws-credentials" },
  };
}

Deno.test("falco: the fields falcosidekick requires, Falco's field names and our kive.* ones", () => {
  const payload = alertPayload(v2Alert(), "falco", "alert-9") as Record<string, unknown>;
  // falcosidekick refuses a payload without priority, rule, time or output_fields.
  for (
    const key of [
      "priority",
      "rule",
      "time",
      "output_fields",
      "output",
      "source",
      "tags",
      "hostname",
    ]
  ) {
    assert.ok(payload[key] !== undefined && payload[key] !== "", key);
  }
  assert.equal(payload.time, "2025-08-02T16:51:19.123456789Z");
  assert.equal(payload.priority, "Error", "severity high is Falco's Error");
  assert.equal(payload.rule, "kivebpf trap file accessed");
  assert.equal(payload.source, "kivebpf");
  assert.equal(payload.uuid, "alert-9");
  assert.doesNotMatch(payload.output as string, /\n/);
  assert.match(payload.output as string, /^Trap file \/secret\.txt opened \(read\) by cat \(pid /);
  const fields = payload.output_fields as Record<string, unknown>;
  assert.deepEqual(
    {
      ns: fields["k8s.ns.name"],
      pod: fields["k8s.pod.name"],
      id: fields["container.id"],
      name: fields["container.name"],
      proc: fields["proc.name"],
      cmdline: fields["proc.cmdline"],
      cwd: fields["proc.cwd"],
      file: fields["fd.name"],
      decoy: fields["kive.decoy.id"],
    },
    {
      ns: "default",
      pod: "nginx-pod",
      id: "0c37a1b2c3d4",
      name: "nginx",
      proc: "cat",
      cmdline: "cat /secret.txt",
      cwd: "",
      file: "/secret.txt",
      decoy: "KIVE234567ABCDEF",
    },
  );
  assert.equal(typeof fields["proc.pid"], "number");
  assert.equal(typeof fields["user.uid"], "number");
  assert.equal(fields["kive.metadata.severity"], "high");
});

Deno.test("falco: a v1 alert's time gets nanoseconds, and unknown severities are Critical", () => {
  const v1 = { ...sampleAlert(), "custom-metadata": { severity: "whatever" } };
  const payload = alertPayload(v1, "falco", "a") as Record<string, string>;
  assert.match(payload.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000000Z$/);
  assert.equal(payload.priority, "Critical");
});

Deno.test("cloudevents: a valid CloudEvents 1.0 event, as the CloudEvents SDK reads it", () => {
  const alert = v2Alert();
  const event = alertPayload(alert, "cloudevents", "alert-9");
  const read = HTTP.toEvent({
    headers: { "content-type": "application/cloudevents+json" },
    body: JSON.stringify(event),
  }) as CloudEvent<KiveAlertV2alpha1>;
  assert.equal(read.validate(), true);
  assert.equal(read.specversion, "1.0");
  assert.equal(read.type, CLOUDEVENT_TYPES.access);
  assert.equal(read.id, "alert-9");
  assert.equal(read.source, "/kivebpf/nodes/kive-worker");
  assert.equal(read.subject, "default/nginx-pod/nginx:/secret.txt");
  assert.equal(read.datacontenttype, "application/json");
  assert.deepEqual(read.data, alert);
  assert.equal(
    (read as unknown as Record<string, string>).kivepolicy,
    "kivebpf-system/kive-sample-policy",
  );
  assert.equal((event as { time: string }).time, "2025-08-02T16:51:19.123456789Z");
});

Deno.test("a loss summary has its own rule, priority and event type", () => {
  const loss: KiveLossAlert = { ...sampleAlert(), process: {}, "lost-accesses": 12 };
  const falco = alertPayload(loss, "falco", "l1") as Record<string, unknown>;
  assert.equal(falco.rule, "kivebpf trap accesses lost");
  assert.equal(falco.priority, "Warning");
  assert.equal((falco.output_fields as Record<string, unknown>)["kive.lost"], 12);
  const event = alertPayload(loss, "cloudevents", "l1") as Record<string, unknown>;
  assert.equal(event.type, CLOUDEVENT_TYPES.lost);
});

Deno.test("a callback gets the alert in its format, with the format's content type", async () => {
  const server = recordingServer();
  const out = memoryWritable();
  const sink = new AlertSink({ stdout: { format: "json", writable: out.writable } });
  try {
    const body = v2Alert();
    for (const format of ["kive", "falco", "cloudevents"] as const) {
      sink.deliver({
        id: `id-${format}`,
        body,
        format,
        callback: { url: `${server.base}/${format}` },
      });
    }
    assert.equal(await sink.flush(), true);
    const byPath = new Map(server.received.map((r) => [r.path, r]));
    assert.deepEqual(JSON.parse(byPath.get("/kive")!.body), { KiveAlert: body });
    assert.equal(byPath.get("/kive")!.headers.get("content-type"), "application/json");
    assert.equal(JSON.parse(byPath.get("/falco")!.body).rule, "kivebpf trap file accessed");
    const ce = byPath.get("/cloudevents")!;
    assert.equal(ce.headers.get("content-type"), "application/cloudevents+json");
    const read = HTTP.toEvent({
      headers: Object.fromEntries(ce.headers),
      body: ce.body,
    }) as CloudEvent;
    assert.equal(read.id, "id-cloudevents");
    assert.equal(ce.id, "id-cloudevents", "Kive-Alert-Id as always");
  } finally {
    await sink.close();
    await server.close();
  }
});

Deno.test("on stdout, a falco or cloudevents JSON line is the payload itself; kive keeps its shape", async () => {
  const out = memoryWritable();
  const sink = new AlertSink({ stdout: { format: "json", writable: out.writable } });
  const body = v2Alert();
  sink.deliver({ id: "s1", body });
  sink.deliver({ id: "s2", body, format: "falco" });
  sink.deliver({ id: "s3", body, format: "cloudevents" });
  await sink.close();
  const [kive, falco, ce] = out.lines().map((line) => JSON.parse(line));
  assert.deepEqual(Object.keys(kive), ["level", "msg", "KiveAlert"]);
  assert.equal(falco.uuid, "s2");
  assert.equal(falco.output_fields["fd.name"], "/secret.txt");
  assert.equal(ce.specversion, "1.0");
  assert.equal(ce.id, "s3");
});
