import assert from "node:assert/strict";
import {
  createAgentMetrics,
  METRIC_NAMES,
  METRICS_CONTENT_TYPE,
  Registry,
  serveMetrics,
} from "../../src/delivery/mod.ts";

/** Reads the text format back; throws on any line that is not HELP, TYPE or a sample. */
function parseExposition(text: string) {
  const help = new Map<string, string>();
  const types = new Map<string, string>();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  assert.ok(text.endsWith("\n"));
  for (const line of text.slice(0, -1).split("\n")) {
    let match = line.match(/^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/);
    if (match) {
      help.set(match[1], match[2].replace(/\\(\\|n)/g, (_, c) => (c === "n" ? "\n" : "\\")));
      continue;
    }
    match = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/);
    if (match) {
      assert.ok(help.has(match[1]), `HELP before TYPE of ${match[1]}`);
      types.set(match[1], match[2]);
      continue;
    }
    match = line.match(
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)$/,
    );
    assert.ok(match, `not a sample line: ${JSON.stringify(line)}`);
    assert.ok(types.has(match[1]), `TYPE before samples of ${match[1]}`);
    const labels: Record<string, string> = {};
    for (
      const [, name, value] of (match[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)
    ) {
      labels[name] = value.replace(/\\(["\\n])/g, (_, c) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[3].replace("+Inf", "Infinity")) });
  }
  return { help, types, samples };
}

Deno.test("Registry.render() writes HELP, TYPE and escaped labels that parse back", () => {
  const registry = new Registry();
  const counter = registry.counter("t_total", 'Help with \\ and\nnewline and "quotes".', [
    "a",
    "b",
  ]);
  const gauge = registry.gauge("t_gauge", "A gauge.");
  const tricky = 'quote " backslash \\ newline \n end';
  counter.inc({ a: tricky, b: "x" });
  counter.inc({ a: tricky, b: "x" }, 2);
  counter.inc({ b: "y", a: "" });
  gauge.set({}, 1.5);
  gauge.dec();
  const text = registry.render();
  assert.match(text, /^t_total\{a="quote \\" backslash \\\\ newline \\n end",b="x"\} 3$/m);
  const parsed = parseExposition(text);
  assert.equal(parsed.help.get("t_total"), 'Help with \\ and\nnewline and "quotes".');
  assert.deepEqual(Object.fromEntries(parsed.types), { t_total: "counter", t_gauge: "gauge" });
  assert.deepEqual(parsed.samples, [
    { name: "t_total", labels: { a: tricky, b: "x" }, value: 3 },
    { name: "t_total", labels: { a: "", b: "y" }, value: 1 },
    { name: "t_gauge", labels: {}, value: 0.5 },
  ]);
});

Deno.test("Registry writes NaN and infinities as Prometheus spells them", () => {
  const registry = new Registry();
  const gauge = registry.gauge("g", "G.", ["k"]);
  gauge.set({ k: "nan" }, NaN);
  gauge.set({ k: "inf" }, Infinity);
  gauge.set({ k: "-inf" }, -Infinity);
  assert.match(registry.render(), /g\{k="nan"\} NaN\ng\{k="inf"\} \+Inf\ng\{k="-inf"\} -Inf\n/);
});

Deno.test("Registry refuses bad names, wrong labels, negative counts and duplicates", () => {
  const registry = new Registry();
  const counter = registry.counter("ok_total", "Ok.", ["endpoint"]);
  const cases: [string, () => unknown, ErrorConstructor][] = [
    ["metric name", () => registry.counter("bad-name", "x"), TypeError],
    ["label name", () => registry.gauge("g", "x", ["bad-label"]), TypeError],
    ["reserved label", () => registry.gauge("g2", "x", ["__name"]), TypeError],
    ["duplicate", () => registry.counter("ok_total", "again"), TypeError],
    ["missing label", () => counter.inc({}), TypeError],
    ["extra label", () => counter.inc({ endpoint: "e", more: "m" }), TypeError],
    ["negative", () => counter.inc({ endpoint: "e" }, -1), RangeError],
  ];
  for (const [what, fn, type] of cases) assert.throws(fn, type, what);
});

Deno.test("createAgentMetrics() registers every agent metric with HELP and TYPE", () => {
  const metrics = createAgentMetrics();
  metrics.alerts.inc({ policy: "p", namespace: "n", sink: "stdout" });
  metrics.callbackFailures.inc({ endpoint: "http://h/in", reason: "queue_full" });
  metrics.callbackRetries.inc({ endpoint: "http://h/in" });
  metrics.callbackQueueDepth.set({ endpoint: "http://h/in" }, 3);
  metrics.eventsLost.inc({}, 5);
  metrics.eventsAggregated.inc();
  metrics.trapsArmed.set({}, 2);
  metrics.backendInfo.set({ backend: "lsm" }, 1);
  metrics.leader.set({ kernel_id: "2c147a95" }, 1);
  metrics.leaseTakeoverSeconds.set({ kernel_id: "2c147a95" }, 6.2);
  metrics.leaseTakeovers.inc({ kernel_id: "2c147a95" });
  metrics.probeOk.set({ probe: "ready" }, 1);
  metrics.trapFileChanges.inc({ kind: "Moved" });
  const parsed = parseExposition(metrics.registry.render());
  for (const name of Object.values(METRIC_NAMES)) {
    assert.ok(parsed.help.has(name), name);
    assert.equal(parsed.types.get(name), name.endsWith("_total") ? "counter" : "gauge", name);
  }
  assert.equal(parsed.samples.length, Object.keys(METRIC_NAMES).length);
});

Deno.test("serveMetrics() serves /metrics and the probes, with the reasons of a failing one", async () => {
  const metrics = createAgentMetrics();
  metrics.trapsArmed.set({}, 4);
  let healthy = true;
  const server = serveMetrics(metrics.registry, {
    hostname: "127.0.0.1",
    port: 0,
    probes: {
      "/healthz": () => ({ ok: healthy, reasons: healthy ? [] : ["the event reader is stuck"] }),
      "/readyz": () => ({ ok: false, reasons: ["watch pods has not listed yet", "no leader"] }),
    },
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const response = await fetch(`${base}/metrics`);
    assert.equal(response.headers.get("content-type"), METRICS_CONTENT_TYPE);
    assert.match(await response.text(), /^kivebpf_traps_armed 4$/m);
    const health = await fetch(`${base}/healthz`);
    assert.deepEqual([health.status, await health.text()], [200, "ok\n"]);
    healthy = false;
    const sick = await fetch(`${base}/healthz`);
    assert.deepEqual([sick.status, await sick.text()], [503, "the event reader is stuck\n"]);
    const ready = await fetch(`${base}/readyz`);
    assert.deepEqual([ready.status, await ready.text()], [
      503,
      "watch pods has not listed yet\nno leader\n",
    ]);
    const missing = await fetch(`${base}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const post = await fetch(`${base}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await server.shutdown();
  }
});

Deno.test("serveMetrics() stops when its signal aborts", async () => {
  const controller = new AbortController();
  const server = serveMetrics(new Registry(), {
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
  });
  controller.abort();
  await server.finished;
});
