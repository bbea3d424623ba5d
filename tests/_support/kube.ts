/**
 * A minimal client for tests against a real API server: reads the admin kubeconfig the test
 * harness wrote and speaks HTTPS with its client certificate. Also runs kubectl the way users do.
 *
 * @module
 */
import { parse } from "yaml";
import { runCommand } from "../../scripts/_run.ts";

/** An HTTP answer of the API server. */
export interface KubeResponse {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** Talks to the API server named by a kubeconfig. */
export class TestKube {
  readonly server: string;
  readonly #client: Deno.HttpClient;

  private constructor(server: string, client: Deno.HttpClient) {
    this.server = server;
    this.#client = client;
  }

  /** Opens a client from `$KUBECONFIG`. */
  static async fromEnv(): Promise<TestKube> {
    const path = Deno.env.get("KUBECONFIG");
    if (!path) throw new Error("KUBECONFIG is not set: run these tests through `deno task test`");
    const config = parse(await Deno.readTextFile(path));
    const cluster = config.clusters[0].cluster;
    const user = config.users[0].user;
    const pem = async (data: string | undefined, file: string | undefined) =>
      data ? atob(data) : await Deno.readTextFile(file as string);
    const client = Deno.createHttpClient({
      caCerts: [await pem(cluster["certificate-authority-data"], cluster["certificate-authority"])],
      cert: await pem(user["client-certificate-data"], user["client-certificate"]),
      key: await pem(user["client-key-data"], user["client-key"]),
    });
    return new TestKube(cluster.server, client);
  }

  /** Sends one request; JSON in, JSON out. */
  async request(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<KubeResponse> {
    const response = await fetch(`${this.server}${path}`, {
      method,
      client: this.#client,
      headers: { "content-type": contentType, accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON: keep the text for the assertion message.
    }
    return { status: response.status, body: parsed };
  }

  /** Like {@linkcode request} but throws unless the status is 2xx. */
  // deno-lint-ignore no-explicit-any
  async ok(method: string, path: string, body?: unknown, contentType?: string): Promise<any> {
    const response = await this.request(method, path, body, contentType);
    if (response.status < 200 || response.status > 299) {
      throw new Error(`${method} ${path} -> ${response.status}: ${JSON.stringify(response.body)}`);
    }
    return response.body;
  }

  close(): void {
    this.#client.close();
  }
}

/** What a kubectl run printed. */
export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the kubectl the harness built, from the repository root, as users type it.
 *
 * @param args Arguments after `kubectl`.
 * @param stdin Text for standard input, for `-f -`.
 */
export function kubectl(args: string[], stdin?: string): Promise<KubectlResult> {
  return runCommand(Deno.env.get("KIVEBPF_KUBECTL") ?? "kubectl", args, {
    cwd: new URL("../../", import.meta.url).pathname,
    stdin,
  });
}

/** Finds a free TCP port on loopback. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
