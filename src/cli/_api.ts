/**
 * GET requests to the API server for the command-line tools, through Deno's fetch with the
 * kubeconfig's TLS and credentials (a streamed response for `alerts -f`). Private to src/cli/.
 *
 * @module
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { HttpClients, type HttpsMaterial, setBasicAuth } from "../kube/deno_http.ts";

/** Sends GETs with one kubeconfig. */
export class ApiReader {
  readonly #config: KubeConfig;
  readonly #clients = new HttpClients();

  /** @param config The kubeconfig, as loaded for the current context. */
  constructor(config: KubeConfig) {
    this.#config = config;
  }

  /**
   * GETs a path; the response is the caller's to read.
   *
   * @throws {Error} naming the path and the status when the answer is not 2xx.
   */
  async get(path: string, signal?: AbortSignal): Promise<Response> {
    const cluster = this.#config.getCurrentCluster();
    if (!cluster) {
      throw new Error("Cannot reach the cluster: the kubeconfig has no current cluster");
    }
    const material: HttpsMaterial = {};
    await this.#config.applyToHTTPSOptions(material as never);
    const headers = new Headers(material.headers ?? {});
    setBasicAuth(headers, material);
    const response = await fetch(`${cluster.server.replace(/\/$/, "")}${path}`, {
      headers,
      signal,
      client: this.#clients.for(material),
    });
    if (!response.ok) {
      const text = (await response.text()).slice(0, 300);
      throw new Error(`Cannot GET ${path}: HTTP ${response.status} ${text}`);
    }
    return response;
  }

  /** GETs a path and parses the JSON answer. */
  async json<T>(path: string): Promise<T> {
    return await (await this.get(path)).json() as T;
  }
}
