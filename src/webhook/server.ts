/**
 * The HTTPS server the API server calls for conversion (`/convert`) and validation
 * (`/validate`), plus `/healthz` for probes.
 *
 * @module
 */
import {
  type AdmissionReview,
  type ConversionReview,
  handleAdmission,
  handleConversion,
} from "./reviews.ts";

/** Options of {@linkcode serveWebhooks}. */
export interface WebhookServerOptions {
  /** Address to listen on; `0.0.0.0` in a pod. */
  hostname?: string;
  /** Port; 0 picks a free one (see the returned server's `addr`). */
  port?: number;
  /** PEM serving certificate (chain). */
  cert: string;
  /** PEM private key of `cert`. */
  key: string;
  /** Stops the server when aborted. */
  signal?: AbortSignal;
  /** Called for each request that could not be handled, for logging. */
  onError?: (error: unknown) => void;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;

/**
 * Routes one request; exported so tests can call it without TLS.
 *
 * @param request The HTTP request.
 * @param onError Receives failures, which become 400 responses.
 * @returns The response.
 */
export async function routeWebhook(
  request: Request,
  onError: (error: unknown) => void = () => {},
): Promise<Response> {
  const { pathname } = new URL(request.url);
  if (pathname === "/healthz") return new Response("ok\n");
  if (request.method !== "POST" || (pathname !== "/convert" && pathname !== "/validate")) {
    return new Response("not found\n", { status: 404 });
  }
  try {
    const length = Number(request.headers.get("content-length") ?? "0");
    if (length > MAX_BODY_BYTES) {
      throw new RangeError(`request body of ${length} bytes is too large`);
    }
    const body = await request.json();
    const answer = pathname === "/convert"
      ? handleConversion(body as ConversionReview)
      : handleAdmission(body as AdmissionReview);
    return Response.json(answer);
  } catch (error) {
    onError(error);
    return new Response(`cannot handle ${pathname}: ${(error as Error).message}\n`, {
      status: 400,
    });
  }
}

/**
 * Serves the webhooks over TLS with `Deno.serve`.
 *
 * @param options Address, certificate and key.
 * @returns The running server; `await server.shutdown()` or abort `signal` to stop it.
 */
export function serveWebhooks(options: WebhookServerOptions): Deno.HttpServer<Deno.NetAddr> {
  const onError = options.onError ?? (() => {});
  return Deno.serve({
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port ?? 9443,
    cert: options.cert,
    key: options.key,
    signal: options.signal,
    onListen: () => {},
  }, (request) => routeWebhook(request, onError));
}
