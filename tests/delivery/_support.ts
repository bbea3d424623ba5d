/**
 * Test helpers of the delivery tests: a recording HTTP server, an in-memory writable and a
 * promise gate.
 *
 * @module
 */
import type { KiveAlertV1 } from "../../src/delivery/mod.ts";

/** One request a {@linkcode RecordingServer} received. */
export interface Received {
  method: string;
  path: string;
  headers: Headers;
  body: string;
  /** The `kive-alert-id` header. */
  id: string;
}

/** A real HTTP(S) server on 127.0.0.1 that records every request. */
export interface RecordingServer {
  /** `http://127.0.0.1:<port>` (or `https://localhost:<port>` with TLS). */
  base: string;
  port: number;
  received: Received[];
  /** Resolves once `count` requests were received (rejects after a generous guard). */
  waitFor(count: number): Promise<void>;
  close(): Promise<void>;
}

/** Answers one request; `index` counts requests from 0. */
export type Handler = (request: Received, index: number) => Response | Promise<Response>;

const GUARD_MS = 20_000;

/**
 * Starts a recording server.
 *
 * @param handler The answer; 200 by default.
 * @param options A fixed port, or TLS material.
 */
export function recordingServer(
  handler: Handler = () => new Response("ok"),
  options: { port?: number; cert?: string; key?: string } = {},
): RecordingServer {
  const received: Received[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    onListen: () => {},
    ...(options.cert ? { cert: options.cert, key: options.key! } : {}),
  }, async (request) => {
    const entry: Received = {
      method: request.method,
      path: new URL(request.url).pathname,
      headers: request.headers,
      body: await request.text(),
      id: request.headers.get("kive-alert-id") ?? "",
    };
    const index = received.length;
    received.push(entry);
    for (const waiter of [...waiters]) {
      if (received.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
    return await handler(entry, index);
  });
  const port = server.addr.port;
  return {
    base: options.cert ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
    port,
    received,
    waitFor(count) {
      if (received.length >= count) return Promise.resolve();
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      const guard = setTimeout(
        () => reject(new Error(`only ${received.length} of ${count} requests arrived`)),
        GUARD_MS,
      );
      waiters.push({
        count,
        resolve: () => {
          clearTimeout(guard);
          resolve();
        },
      });
      return promise;
    },
    close: () => server.shutdown(),
  };
}

/** A port that was free a moment ago and has nothing listening on it. */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A writable that keeps every chunk as text. */
export interface MemoryWritable {
  writable: WritableStream<Uint8Array>;
  chunks: string[];
  /** Everything written, split into lines (without the line feeds). */
  lines(): string[];
}

/**
 * Creates a {@linkcode MemoryWritable}.
 *
 * @param slow Yield to the event loop before taking each chunk, like a busy pipe.
 */
export function memoryWritable(slow = false): MemoryWritable {
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  return {
    chunks,
    writable: new WritableStream<Uint8Array>({
      async write(chunk) {
        if (slow) await new Promise((resolve) => setTimeout(resolve, 0));
        chunks.push(decoder.decode(chunk));
      },
    }, { highWaterMark: 1 }),
    lines: () => chunks.join("").split("\n").filter((line) => line !== ""),
  };
}

/** A promise to open later: handlers await `gate.promise` until the test calls `open()`. */
export function gate(): { promise: Promise<void>; open: () => void } {
  const { promise, resolve } = Promise.withResolvers<void>();
  return { promise, open: resolve };
}

/**
 * The seed's sample alert. Overrides may add keys no alert has (to pad a line, to tell lines
 * apart): the sinks write any object they are given as it is.
 */
export function sampleAlert(overrides: Record<string, unknown> = {}): KiveAlertV1 {
  const alert: KiveAlertV1 = {
    "kive-alert-version": "v1",
    "kive-policy-name": "kive-sample-policy",
    "timestamp": "2025-08-02T16:51:19Z",
    "metadata": {
      "path": "/secret.txt",
      "inode": 16256084,
      "mask": 36,
      "kernel-id": "2c147a95-23e5-4f99-a2de-67d5e9fdb502",
    },
    "custom-metadata": { "severity": "medium" },
    "pod": {
      "name": "nginx-pod",
      "namespace": "default",
      "container": {
        "id": "containerd://0c37512624823392d71e99a12011148db30ba7ea2a74fc7ff8bd5f85bc7b499c",
        "name": "nginx",
      },
    },
    "node": { "name": "kive-worker" },
    "process": {
      "pid": 176928,
      "tgid": 176928,
      "uid": 0,
      "gid": 0,
      "binary": "cat",
      "cwd": "",
      "arguments": "/secret.txt",
    },
  };
  return { ...alert, ...overrides } as KiveAlertV1;
}
