import assert from "node:assert/strict";
import { formatAlertLine, StdoutSink } from "../../src/delivery/mod.ts";
import { memoryWritable, sampleAlert } from "./_support.ts";

const TIME = new Date("2025-08-02T16:51:19.734Z");

Deno.test("formatAlertLine() writes the seed's text line on one line, keys in order", () => {
  const line = formatAlertLine(sampleAlert(), { time: TIME });
  assert.ok(line.endsWith("\n"));
  assert.equal(line.indexOf("\n"), line.length - 1, "exactly one line");
  const [time, level, msg, json, ...rest] = line.trimEnd().split("\t");
  assert.deepEqual([time, level, msg, rest], [
    "2025-08-02T16:51:19Z",
    "INFO",
    "Access Detected",
    [],
  ]);
  assert.equal(json, JSON.stringify({ KiveAlert: sampleAlert() }));
  assert.deepEqual(Object.keys(JSON.parse(json).KiveAlert), Object.keys(sampleAlert()));
});

Deno.test("formatAlertLine() writes pure JSON lines with format json", () => {
  const line = formatAlertLine(sampleAlert(), { format: "json", time: TIME });
  assert.equal(
    line,
    `${JSON.stringify({ level: "info", msg: "Access Detected", KiveAlert: sampleAlert() })}\n`,
  );
});

Deno.test("formatAlertLine() adds error and callback to a failed delivery", () => {
  const failure = { error: "Callback failed after 3 attempts: HTTP 503", callback: "http://h/in" };
  const text = formatAlertLine(sampleAlert(), { time: TIME, failure });
  assert.equal(
    text,
    `2025-08-02T16:51:19Z\tERROR\tAccess Detected\t${
      JSON.stringify({ KiveAlert: sampleAlert(), ...failure })
    }\n`,
  );
  const json = JSON.parse(formatAlertLine(sampleAlert(), { format: "json", failure }));
  assert.deepEqual(json, {
    level: "error",
    msg: "Access Detected",
    KiveAlert: sampleAlert(),
    ...failure,
  });
});

Deno.test("formatAlertLine() escapes line breaks inside values", () => {
  const line = formatAlertLine(sampleAlert({ "custom-metadata": { note: "a\nb\tc\u2028" } }), {
    format: "json",
  });
  assert.equal(line.split("\n").length, 2);
  assert.equal(JSON.parse(line).KiveAlert["custom-metadata"].note, "a\nb\tc\u2028");
});

Deno.test("StdoutSink rejects an unknown format", () => {
  assert.throws(
    () => new StdoutSink({ format: "yaml" as "json", writable: memoryWritable().writable }),
    TypeError,
  );
});

Deno.test("StdoutSink writes whole lines when many tasks write at once", async () => {
  const out = memoryWritable(true);
  const sink = new StdoutSink({ format: "json", writable: out.writable });
  const count = 300;
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, i % 7));
      // Sizes from tiny to well above a pipe buffer.
      sink.write(sampleAlert({ id: i, pad: "x".repeat((i * 997) % 150_000) }));
    }),
  );
  await sink.close();
  assert.ok(out.chunks.every((chunk) => chunk.endsWith("\n")), "every write ends a line");
  const lines = out.lines();
  assert.equal(lines.length, count);
  const ids = lines.map((line) => JSON.parse(line).KiveAlert.id as number);
  assert.deepEqual(new Set(ids).size, count);
});

Deno.test("StdoutSink keeps lines whole on a real stdout pipe under concurrent writes", async () => {
  const module = new URL("../../src/delivery/mod.ts", import.meta.url).href;
  const script = `
    import { StdoutSink } from ${JSON.stringify(module)};
    const sink = new StdoutSink();
    await Promise.all(Array.from({ length: 400 }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, i % 5));
      sink.write({ id: i, pad: "y".repeat((i * 7919) % 70000) });
      console.log("#noise " + i);
    }));
    await sink.close();
  `;
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(code, 0);
  const lines = new TextDecoder().decode(stdout).split("\n").filter((line) => line !== "");
  const alerts = lines.filter((line) => !line.startsWith("#noise "));
  assert.equal(alerts.length, 400);
  for (const line of alerts) {
    const [time, level, msg, json] = line.split("\t");
    assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(level, "INFO");
    assert.equal(msg, "Access Detected");
    JSON.parse(json);
  }
});

Deno.test("StdoutSink.write() returns false above the high-water mark but keeps the line", async () => {
  const out = memoryWritable(true);
  const sink = new StdoutSink({ writable: out.writable, highWaterMark: 2 });
  const answers = Array.from({ length: 10 }, (_, id) => sink.write(sampleAlert({ id })));
  assert.equal(answers[0], true);
  assert.equal(answers[9], false, "ten lines written in one turn exceed a mark of two");
  await sink.flush();
  assert.equal(sink.pending, 0);
  assert.equal(out.lines().length, 10);
  assert.equal(sink.write(sampleAlert({ id: 5 })), true);
  await sink.close();
});

Deno.test("StdoutSink hands lines to onError when the output fails", async () => {
  const failed: string[] = [];
  const sink = new StdoutSink({
    writable: new WritableStream({
      write() {
        throw new Error("EPIPE");
      },
    }),
    onError: (error, lines) => {
      assert.match(String((error.cause as Error).message), /EPIPE/);
      failed.push(...lines);
    },
  });
  sink.write(sampleAlert({ id: 1 }));
  sink.write(sampleAlert({ id: 2 }));
  await sink.close();
  assert.equal(failed.length, 2);
});
