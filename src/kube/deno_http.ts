/**
 * The HTTP transport of every Kubernetes API call: Deno's own `fetch` instead of the npm
 * `undici` that client-node ships with.
 *
 * Why: under Deno 2.9, undici runs on the Node compatibility layer, and a request in flight
 * when the API server goes away crashes the whole process (a segmentation fault or a general
 * protection fault in free(), measured: 2 of 2 runs of a loop of list calls, and about half the
 * runs of the agent's API-outage chaos test). A crashed agent loses nothing (the kernel objects
 * are pinned), but it must not crash. Deno's fetch reports the same failures as errors.
 *
 * @module
 */
import {
  type Configuration,
  createConfiguration,
  KubeConfig,
  type RequestContext,
  ResponseContext,
  ServerConfiguration,
  wrapHttpLibrary,
} from "@kubernetes/client-node";

/** TLS and auth material the kubeconfig gives, as client-node fills https options. */
export interface HttpsMaterial {
  ca?: Uint8Array | string;
  cert?: Uint8Array | string;
  key?: Uint8Array | string;
  auth?: string;
  rejectUnauthorized?: boolean;
  headers?: Record<string, string>;
}

/**
 * Adds the kubeconfig's basic-auth user (if any) as the Authorization header, unless an auth
 * provider already set one.
 *
 * @param headers The request's headers, changed in place.
 * @param material What `KubeConfig.applyToHTTPSOptions` filled in.
 */
export function setBasicAuth(headers: Headers, material: HttpsMaterial): void {
  if (material.auth && !headers.has("Authorization")) {
    headers.set("Authorization", `Basic ${btoa(material.auth)}`);
  }
}

function asText(value: Uint8Array | string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === "string" ? value : new TextDecoder().decode(value);
}

/**
 * One Deno HTTP client per TLS identity (CA, client certificate, key), reused by every request
 * and never closed while one may be in flight; a rotated certificate gets a new one.
 */
export class HttpClients {
  #current?: { identity: string; client: Deno.HttpClient | undefined };

  /**
   * The client for this material.
   *
   * @param material What `KubeConfig.applyToHTTPSOptions` filled in.
   * @returns A client, or undefined where the system's defaults do (no CA, no certificate).
   * @throws {Error} For `insecure-skip-tls-verify`, which Deno clients cannot do per client.
   */
  for(material: HttpsMaterial): Deno.HttpClient | undefined {
    const [ca, cert, key] = [material.ca, material.cert, material.key].map(asText);
    const identity = JSON.stringify([ca, cert, key]);
    if (this.#current?.identity === identity) return this.#current.client;
    if (material.rejectUnauthorized === false) {
      throw new Error(
        "the kubeconfig sets insecure-skip-tls-verify, which kivebpf does not support: " +
          "give the cluster's certificate-authority instead",
      );
    }
    const client = !ca && !cert ? undefined : Deno.createHttpClient({
      ...(ca ? { caCerts: [ca] } : {}),
      ...(cert && key ? { cert, key } : {}),
    });
    this.#current = { identity, client };
    return client;
  }
}

/** client-node's HTTP library interface, over Deno's fetch. */
class DenoFetchLibrary {
  readonly #kubeConfig: KubeConfig;
  readonly #clients = new HttpClients();

  constructor(kubeConfig: KubeConfig) {
    this.#kubeConfig = kubeConfig;
  }

  async send(request: RequestContext): Promise<ResponseContext> {
    const material: HttpsMaterial = {};
    await this.#kubeConfig.applyToHTTPSOptions(material as never);
    const headers = new Headers(request.getHeaders());
    setBasicAuth(headers, material);
    const response = await fetch(request.getUrl(), {
      method: request.getHttpMethod().toString(),
      body: request.getBody() as BodyInit | undefined,
      headers,
      signal: request.getSignal(),
      client: this.#clients.for(material),
    });
    const responseHeaders: Record<string, string> = {};
    response.headers.forEach((value, name) => (responseHeaders[name] = value));
    const bytes = new Uint8Array(await response.arrayBuffer());
    return new ResponseContext(response.status, responseHeaders, {
      text: () => Promise.resolve(new TextDecoder().decode(bytes)),
      binary: () => Promise.resolve(bytes as never),
      stream: () => new Blob([bytes]).stream() as never,
    });
  }
}

/**
 * A KubeConfig whose API clients send through Deno's fetch ({@linkcode DenoFetchLibrary}).
 * Everything else (loading, auth providers, contexts) is client-node's.
 */
export class DenoKubeConfig extends KubeConfig {
  /**
   * Makes an API client like client-node does, with Deno's fetch as its transport.
   *
   * @param apiClientType The API class, such as `CoreV1Api`.
   * @returns The client.
   */
  override makeApiClient<T>(apiClientType: new (config: Configuration) => T): T {
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig has no current cluster");
    return new apiClientType(createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: this },
      httpApi: wrapHttpLibrary(new DenoFetchLibrary(this)),
    }));
  }
}
