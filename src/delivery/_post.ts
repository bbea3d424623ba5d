/**
 * One callback POST and what its answer means for retrying; the HTTP clients of CA bundles.
 * Private to src/delivery/.
 *
 * @module
 */
import { parseRetryAfter } from "./_retry.ts";

/** What one attempt came to. */
export type Outcome =
  | { ok: true }
  | { ok: false; retry: boolean; error: string; retryAfterMs?: number };

const MAX_ERROR_BODY = 200;

/** A request ready to send, the same on every attempt. */
export interface PostRequest {
  url: string;
  /** The URL's origin and path, for messages. */
  endpoint: string;
  headers: Headers;
  body: string;
  client: Deno.HttpClient | undefined;
}

/**
 * One POST of a prepared request: never throws; says whether to retry.
 *
 * @param request The URL, headers, body and client; `endpoint` (origin and path) replaces
 *   the URL in error messages, whose query may hold a token.
 * @param timeoutMs The attempt's time limit.
 * @param shutdown Aborts the attempt when the agent stops.
 */
export async function postOnce(
  request: PostRequest,
  timeoutMs: number,
  shutdown: AbortSignal,
): Promise<Outcome> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  const signal = AbortSignal.any([timeout.signal, shutdown]);
  try {
    const response = await fetch(request.url, {
      method: "POST",
      headers: request.headers,
      body: request.body,
      client: request.client,
      redirect: "manual",
      signal,
    });
    const { status } = response;
    if (status >= 200 && status < 300) {
      await response.body?.cancel();
      return { ok: true };
    }
    const text = (await response.text()).trim().slice(0, MAX_ERROR_BODY);
    let error = `HTTP ${status} ${response.statusText}`.trim() + (text ? `: ${text}` : "");
    if (status >= 300 && status < 400) {
      error += ` (redirect to "${response.headers.get("location") ?? ""}" not followed)`;
    }
    const retry = status >= 500 || status === 408 || status === 429;
    return {
      ok: false,
      retry,
      error,
      retryAfterMs: parseRetryAfter(response.headers.get("retry-after")),
    };
  } catch (cause) {
    if (timeout.signal.aborted) {
      return { ok: false, retry: true, error: `timed out after ${timeoutMs} ms` };
    }
    if (shutdown.aborted) {
      return { ok: false, retry: false, error: "aborted at shutdown" };
    }
    // Deno's messages carry the full URL, whose query may hold a token.
    return {
      ok: false,
      retry: true,
      error: errorMessage(cause).replaceAll(request.url, request.endpoint),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** One HTTP client per CA bundle, made on first use, closed together. */
export class CaClients {
  #clients = new Map<string, Deno.HttpClient>();

  /**
   * The client that trusts a bundle (and the system roots).
   *
   * @throws {TypeError} when the bundle holds no usable PEM certificate
   */
  get(caBundle: string): Deno.HttpClient {
    let client = this.#clients.get(caBundle);
    if (!client) {
      if (!caBundle.includes("-----BEGIN CERTIFICATE-----")) {
        throw new TypeError("cannot use the CA bundle: it holds no PEM certificate");
      }
      try {
        client = Deno.createHttpClient({ caCerts: [caBundle] });
      } catch (cause) {
        throw new TypeError(`cannot use the CA bundle: ${errorMessage(cause)}`, { cause });
      }
      this.#clients.set(caBundle, client);
    }
    return client;
  }

  /** Closes every client. */
  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}

/** The message of an error and of its causes, e.g. `fetch failed: error sending request ...`. */
export function errorMessage(error: unknown): string {
  const parts: string[] = [];
  for (let e = error, depth = 0; e !== undefined && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}
