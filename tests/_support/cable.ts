/**
 * A TCP path to the API server that a test can cut or silence, and a kubeconfig that uses it:
 * how tests make the control plane unreachable for one client without stopping it for others.
 *
 * @module
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { DenoKubeConfig, loadKubeConfig } from "../../src/kube/mod.ts";

/** A TCP forwarder to the API server whose path the test can cut, or make silent. */
export class Cable implements AsyncDisposable {
  /** The local port that forwards to the API server. */
  readonly port: number;
  #target: { hostname: string; port: number };
  #listener: Deno.Listener | null = null;
  #conns = new Set<Deno.Conn>();
  /** "up" forwards, "silent" accepts and reads but never answers, "cut" refuses. */
  #mode: "up" | "silent" | "cut" = "up";

  /** @param target The API server's URL. */
  constructor(target: URL) {
    this.#target = { hostname: target.hostname, port: Number(target.port || 443) };
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accept(this.#listener);
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const conn of listener) this.#serve(conn);
    } catch {
      // closed by cut()
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    try {
      if (this.#mode === "silent") {
        for await (const _ of conn.readable) { /* swallow, never answer */ }
        return;
      }
      const upstream = await Deno.connect(this.#target);
      this.#conns.add(upstream);
      await Promise.allSettled([
        conn.readable.pipeTo(upstream.writable),
        upstream.readable.pipeTo(conn.writable),
      ]);
    } catch {
      // a cut connection
    } finally {
      for (const c of [conn]) this.#conns.delete(c);
    }
  }

  #dropAll(): void {
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
    this.#conns.clear();
  }

  /** Refuses new connections and drops open ones: the API server is unreachable. */
  cut(): void {
    this.#mode = "cut";
    this.#listener?.close();
    this.#listener = null;
    this.#dropAll();
  }

  /** Accepts connections but never answers: a hung API server or a black-holed route. */
  silence(): void {
    this.#mode = "silent";
    this.#dropAll();
  }

  /** Forwards again. */
  restore(): void {
    this.#mode = "up";
    if (!this.#listener) {
      this.#listener = Deno.listen({ hostname: "127.0.0.1", port: this.port });
      this.#accept(this.#listener);
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.cut();
    return Promise.resolve();
  }
}

/**
 * The test's kubeconfig (`$KUBECONFIG`) with its server replaced by the cable's local end.
 *
 * @param cable The path every request of the returned config takes.
 * @returns A kubeconfig for clients under test.
 */
export function kubeConfigThrough(cable: Cable): KubeConfig {
  const base = loadKubeConfig(Deno.env.get("KUBECONFIG"));
  const cluster = base.getCurrentCluster()!;
  const config = new DenoKubeConfig();
  config.loadFromOptions({
    clusters: [{ ...cluster, server: `https://127.0.0.1:${cable.port}` }],
    users: base.users,
    contexts: base.contexts,
    currentContext: base.currentContext,
  });
  return config;
}
