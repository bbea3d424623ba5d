/**
 * One line for an error in logs and status, with the API server's message when there is one.
 *
 * @module
 */

/** A one-line description of an error, including an API error's message. */
export function describe(error: unknown): string {
  const body = (error as { body?: unknown })?.body;
  if (body) {
    try {
      const parsed = typeof body === "string" ? JSON.parse(body) : body;
      if (parsed?.message) return `${(error as Error).message ?? "API error"}: ${parsed.message}`;
    } catch {
      // not JSON
    }
  }
  return error instanceof Error ? error.message : String(error);
}
