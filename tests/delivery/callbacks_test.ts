import assert from "node:assert/strict";
import {
  AlertSink,
  type AlertSinkOptions,
  createAgentMetrics,
  METRIC_NAMES,
} from "../../src/delivery/mod.ts";
import { makeTestTls } from "../_support/tls.ts";
import { closedPort, gate, memoryWritable, recordingServer, sampleAlert } from "./_support.ts";

/** Fast retry settings so tests take milliseconds, not minutes. */
const FAST = { initialBackoffMs: 5, maxBackoffMs: 40, timeoutMs: 2000, retryBudgetMs: 10_000 };

function makeSink(callbacks: AlertSinkOptions["callbacks"] = FAST) {
  const out = memoryWritable();
  const metrics = createAgentMetrics();
  const sink = new AlertSink({
    stdout: { format: "json", writable: out.writable },
    callbacks,
    metrics,
  });
  /** Fallback lines as objects. */
  const fallback = () => out.lines().map((line) => JSON.parse(line) as Record<string, unknown>);
  return { sink, out, metrics, fallback };
}

function alertId(line: Record<string, unknown>): unknown {
  return (line.KiveAlert as Record<string, unknown>)["id"];
}

Deno.test("deliver() POSTs {KiveAlert} as JSON with Kive-Alert-Id and the extra headers", async () => {
  const server = recordingServer();
  const { sink, out, metrics } = makeSink();
  try {
    const body = sampleAlert();
    sink.deliver({
      id: "alert-1",
      body,
      callback: { url: `${server.base}/ingest?x=1`, headers: { authorization: "Bearer s3cret" } },
    });
    assert.equal(await sink.flush(), true);
    assert.equal(server.received.length, 1);
    const [request] = server.received;
    assert.equal(request.method, "POST");
    assert.equal(request.path, "/ingest");
    assert.equal(request.body, JSON.stringify({ KiveAlert: body }));
    assert.equal(request.headers.get("content-type"), "application/json");
    assert.equal(request.headers.get("kive-alert-id"), "alert-1");
    assert.equal(request.headers.get("authorization"), "Bearer s3cret");
    assert.deepEqual(out.lines(), [], "a delivered callback writes no stdout line");
    assert.equal(
      metrics.alerts.get({ policy: "kive-sample-policy", namespace: "", sink: "callback" }),
      1,
    );
  } finally {
    await sink.close();
    await server.close();
  }
});

Deno.test("deliver() without a callback writes one stdout line and counts it", async () => {
  const { sink, fallback, metrics } = makeSink();
  try {
    sink.deliver({ id: "a", body: sampleAlert(), policy: { name: "p", namespace: "ns" } });
    await sink.flush();
    const [line] = fallback();
    assert.deepEqual(line, { level: "info", msg: "Access Detected", KiveAlert: sampleAlert() });
    assert.equal(metrics.alerts.get({ policy: "p", namespace: "ns", sink: "stdout" }), 1);
  } finally {
    await sink.close();
  }
});

Deno.test("a dead and a slow endpoint do not delay another endpoint's alerts", async () => {
  const release = gate();
  const arrivals: string[] = [];
  const slow = recordingServer(async (request) => {
    await release.promise;
    arrivals.push(`slow:${request.id}`);
    return new Response("ok");
  });
  const fast = recordingServer((request) => {
    arrivals.push(`fast:${request.id}`);
    return new Response("ok");
  });
  const dead = `http://127.0.0.1:${closedPort()}/ingest`;
  const deadWithToken = `${dead}?token=s3cret`;
  const { sink, fallback } = makeSink({ ...FAST, concurrency: 2, retryBudgetMs: 200 });
  try {
    for (let i = 0; i < 6; i++) {
      // Slow and dead first, so they would be ahead of the fast ones in a shared queue.
      sink.deliver({
        id: `s${i}`,
        body: sampleAlert({ id: `s${i}` }),
        callback: { url: `${slow.base}/` },
      });
      sink.deliver({
        id: `d${i}`,
        body: sampleAlert({ id: `d${i}` }),
        callback: { url: deadWithToken },
      });
      sink.deliver({
        id: `f${i}`,
        body: sampleAlert({ id: `f${i}` }),
        callback: { url: `${fast.base}/` },
      });
    }
    await fast.waitFor(6);
    // In any order, but all of them while the slow endpoint still holds its requests.
    assert.deepEqual(
      new Set(arrivals),
      new Set(["f0", "f1", "f2", "f3", "f4", "f5"].map((id) => `fast:${id}`)),
    );
    release.open();
    assert.equal(await sink.flush(), true);
    assert.deepEqual(
      new Set(arrivals.filter((a) => a.startsWith("slow:"))),
      new Set(["s0", "s1", "s2", "s3", "s4", "s5"].map((id) => `slow:${id}`)),
    );
    const failed = fallback();
    assert.deepEqual(new Set(failed.map(alertId)), new Set(["d0", "d1", "d2", "d3", "d4", "d5"]));
    for (const line of failed) {
      assert.equal(line.level, "error");
      assert.equal(line.callback, dead);
      assert.match(
        String(line.error),
        /^Callback failed after \d+ attempts?: .*Connection refused/,
      );
      assert.doesNotMatch(String(line.error), /s3cret/, "the query is not logged");
    }
  } finally {
    release.open();
    await sink.close();
    await slow.close();
    await fast.close();
  }
});

Deno.test("a server that answers 503 twice then 200 gets the alert, same Kive-Alert-Id", async () => {
  const server = recordingServer((_, index) =>
    index < 2 ? new Response("busy", { status: 503 }) : new Response("ok")
  );
  const { sink, out, metrics } = makeSink();
  try {
    const body = sampleAlert();
    sink.deliver({ id: "retry-me", body, callback: { url: `${server.base}/ingest` } });
    assert.equal(await sink.flush(), true);
    assert.equal(server.received.length, 3);
    assert.deepEqual(server.received.map((r) => r.id), ["retry-me", "retry-me", "retry-me"]);
    assert.ok(server.received.every((r) => r.body === JSON.stringify({ KiveAlert: body })));
    assert.deepEqual(out.lines(), []);
    const endpoint = `${server.base}/ingest`;
    assert.equal(metrics.callbackRetries.get({ endpoint }), 2);
    assert.equal(
      metrics.callbackFailures.get({ endpoint, reason: "retries_exhausted" }),
      undefined,
    );
    assert.equal(metrics.callbackQueueDepth.get({ endpoint }), 0);
  } finally {
    await sink.close();
    await server.close();
  }
});

for (const status of [500, 502, 503, 504, 408, 429]) {
  Deno.test(`HTTP ${status} is retried until the endpoint answers 200`, async () => {
    const server = recordingServer((_, index) =>
      index === 0
        ? new Response(null, { status, headers: status === 429 ? { "retry-after": "0" } : {} })
        : new Response(null, { status: 204 })
    );
    const { sink, out } = makeSink();
    try {
      sink.deliver({ id: "x", body: sampleAlert(), callback: { url: server.base } });
      await sink.flush();
      assert.equal(server.received.length, 2);
      assert.deepEqual(out.lines(), []);
    } finally {
      await sink.close();
      await server.close();
    }
  });
}

for (const status of [400, 401, 403, 404, 410, 413, 422, 302]) {
  Deno.test(`HTTP ${status} sends the alert to the stdout fallback at once`, async () => {
    const server = recordingServer(() =>
      new Response("nope", { status, headers: status === 302 ? { location: "/elsewhere" } : {} })
    );
    const { sink, fallback, metrics } = makeSink();
    try {
      sink.deliver({ id: "x", body: sampleAlert(), callback: { url: `${server.base}/in` } });
      await sink.flush();
      assert.equal(server.received.length, 1, "not retried");
      const [line] = fallback();
      assert.deepEqual(line.KiveAlert, sampleAlert());
      assert.equal(line.callback, `${server.base}/in`);
      assert.match(
        String(line.error),
        new RegExp(`^Callback failed after 1 attempt: HTTP ${status}`),
      );
      assert.equal(
        metrics.callbackFailures.get({ endpoint: `${server.base}/in`, reason: "rejected" }),
        1,
      );
    } finally {
      await sink.close();
      await server.close();
    }
  });
}

Deno.test("a server down for a while then started on the same port receives every alert", async () => {
  const port = closedPort();
  const { sink, out, metrics } = makeSink({ ...FAST, concurrency: 2 });
  const endpoint = `http://127.0.0.1:${port}/ingest`;
  const ids = Array.from({ length: 10 }, (_, i) => `late-${i}`);
  let server;
  try {
    for (const id of ids) sink.deliver({ id, body: sampleAlert(), callback: { url: endpoint } });
    // Wait (without a clock) until the outage has been seen and retried.
    while ((metrics.callbackRetries.get({ endpoint }) ?? 0) < 3) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    server = recordingServer(undefined, { port });
    assert.equal(await sink.flush(), true);
    assert.deepEqual(new Set(server.received.map((r) => r.id)), new Set(ids), "none lost");
    assert.deepEqual(out.lines(), [], "nothing fell back to stdout");
  } finally {
    await sink.close();
    await server?.close();
  }
});

Deno.test("after the retry budget the alert is on stdout with the last error", async () => {
  const server = recordingServer(() => new Response("down for maintenance", { status: 503 }));
  const out = memoryWritable();
  const sink = new AlertSink({
    stdout: { writable: out.writable, now: () => new Date("2025-08-02T16:51:19.500Z") },
    callbacks: { ...FAST, retryBudgetMs: 100 },
  });
  try {
    sink.deliver({ id: "budget", body: sampleAlert(), callback: { url: `${server.base}/in` } });
    await sink.flush();
    assert.ok(server.received.length >= 2, "retried before giving up");
    const [line] = out.lines();
    const [time, level, msg, json] = line.split("\t");
    assert.equal(time, "2025-08-02T16:51:19Z");
    assert.equal(level, "ERROR");
    assert.equal(msg, "Access Detected");
    const parsed = JSON.parse(json);
    assert.deepEqual(parsed.KiveAlert, sampleAlert());
    assert.equal(parsed.callback, `${server.base}/in`);
    assert.match(
      parsed.error,
      /^Callback failed after \d+ attempts: HTTP 503 Service Unavailable: down for maintenance$/,
    );
  } finally {
    await sink.close();
    await server.close();
  }
});

Deno.test("a request that times out is retried, then falls back with the timeout", async () => {
  const release = gate();
  const server = recordingServer(async () => {
    await release.promise;
    return new Response("late");
  });
  const { sink, fallback } = makeSink({ ...FAST, timeoutMs: 20, retryBudgetMs: 150 });
  try {
    sink.deliver({ id: "t", body: sampleAlert(), callback: { url: server.base } });
    await sink.flush();
    const [line] = fallback();
    assert.match(String(line.error), /timed out after 20 ms$/);
  } finally {
    release.open();
    await sink.close();
    await server.close();
  }
});

Deno.test("a full endpoint queue sends its oldest alert to stdout with queue full", async () => {
  const release = gate();
  const server = recordingServer(async () => {
    await release.promise;
    return new Response("ok");
  });
  const { sink, fallback, metrics } = makeSink({ ...FAST, concurrency: 1, queueSize: 2 });
  try {
    for (const id of ["q1", "q2", "q3", "q4", "q5"]) {
      sink.deliver({ id, body: sampleAlert({ id }), callback: { url: server.base } });
    }
    // q1 is in flight, q2 and q3 were pushed out by q4 and q5.
    await sink.flush(0);
    const failed = fallback();
    assert.deepEqual(failed.map(alertId), ["q2", "q3"]);
    assert.ok(failed.every((line) => String(line.error).startsWith("Callback failed: queue full")));
    release.open();
    assert.equal(await sink.flush(), true);
    assert.deepEqual(server.received.map((r) => r.id).sort(), ["q1", "q4", "q5"]);
    assert.equal(
      metrics.callbackFailures.get({ endpoint: `${server.base}/`, reason: "queue_full" }),
      2,
    );
  } finally {
    release.open();
    await sink.close();
    await server.close();
  }
});

Deno.test("close() hands alerts still queued or in flight to stdout, and later ones too", async () => {
  const release = gate();
  const server = recordingServer(async () => {
    await release.promise;
    return new Response("ok");
  });
  const { sink, fallback } = makeSink({ ...FAST, concurrency: 1 });
  try {
    for (const id of ["c1", "c2", "c3"]) {
      sink.deliver({ id, body: sampleAlert({ id }), callback: { url: server.base } });
    }
    await server.waitFor(1);
    await sink.close({ timeoutMs: 10 });
    sink.deliver({ id: "c4", body: sampleAlert({ id: "c4" }), callback: { url: server.base } });
    await sink.flush();
    const failed = fallback();
    assert.deepEqual(failed.map(alertId).sort(), ["c1", "c2", "c3", "c4"]);
    assert.ok(failed.every((line) => /shut/.test(String(line.error))));
  } finally {
    release.open();
    await sink.close();
    await server.close();
  }
});

Deno.test("an unusable URL or header goes to stdout at once", async () => {
  const { sink, fallback, metrics } = makeSink();
  try {
    sink.deliver({ id: "u1", body: sampleAlert({ id: "u1" }), callback: { url: "not a url" } });
    sink.deliver({ id: "u2", body: sampleAlert({ id: "u2" }), callback: { url: "ftp://x/y" } });
    sink.deliver({
      id: "u3",
      body: sampleAlert({ id: "u3" }),
      callback: { url: "http://127.0.0.1:1/", headers: { "bad header": "x" } },
    });
    sink.deliver({
      id: "u4",
      body: sampleAlert({ id: "u4" }),
      callback: { url: "https://127.0.0.1:1/", caBundle: "not a certificate" },
    });
    await sink.flush();
    const failed = fallback();
    assert.deepEqual(failed.map(alertId), ["u1", "u2", "u3", "u4"]);
    assert.match(String(failed[3].error), /CA bundle: it holds no PEM certificate/);
    assert.match(String(failed[0].error), /cannot use URL "not a url"/);
    assert.equal(metrics.callbackFailures.get({ endpoint: "(invalid)", reason: "invalid" }), 2);
  } finally {
    await sink.close();
  }
});

Deno.test("https callbacks trust the endpoint's CA bundle, and only with it", async () => {
  const tls = await makeTestTls();
  const server = recordingServer(undefined, { cert: tls.cert, key: tls.key });
  const { sink, fallback } = makeSink({ ...FAST, retryBudgetMs: 100 });
  try {
    const url = `${server.base}/ingest`;
    sink.deliver({ id: "tls-ok", body: sampleAlert(), callback: { url, caBundle: tls.caCert } });
    sink.deliver({
      id: "tls-untrusted",
      body: sampleAlert({ id: "tls-untrusted" }),
      callback: { url },
    });
    await sink.flush();
    assert.deepEqual(server.received.map((r) => r.id), ["tls-ok"]);
    const [line] = fallback();
    assert.equal(alertId(line), "tls-untrusted");
    assert.match(String(line.error), /certificate|UnknownIssuer/i);
  } finally {
    await sink.close();
    await server.close();
  }
});

Deno.test("the delivery metrics appear in the exposition", async () => {
  const server = recordingServer(() => new Response(null, { status: 500 }));
  const { sink, metrics } = makeSink({ ...FAST, retryBudgetMs: 50 });
  try {
    sink.deliver({ id: "m", body: sampleAlert(), callback: { url: server.base } });
    await sink.flush();
    const text = metrics.registry.render();
    const endpoint = `${server.base}/`;
    assert.match(
      text,
      new RegExp(
        `^${METRIC_NAMES.callbackFailures}\\{endpoint="${endpoint}",reason="retries_exhausted"\\} 1$`,
        "m",
      ),
    );
    assert.match(
      text,
      new RegExp(
        `^${METRIC_NAMES.alerts}\\{policy="kive-sample-policy",namespace="",sink="stdout"\\} 1$`,
        "m",
      ),
    );
    assert.match(
      text,
      new RegExp(`^${METRIC_NAMES.callbackQueueDepth}\\{endpoint="${endpoint}"\\} 0$`, "m"),
    );
  } finally {
    await sink.close();
    await server.close();
  }
});
