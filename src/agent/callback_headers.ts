/**
 * The callback headers policies name by Secret (`callbackHeadersFrom.secretName`), read in the
 * background into a cache so that an alert never waits for the API server. Only Secrets in the
 * agent's own namespace that carry the label {@linkcode HEADERS_LABEL} are used: a policy must
 * not be able to make the agent send other Secrets (its own TLS key, say) to a URL it chose.
 *
 * @module
 */
import type { CoreV1Api } from "@kubernetes/client-node";
import { GROUP } from "../api/mod.ts";
import { describe } from "./describe.ts";
import type { Logger } from "./log.ts";

/** Label a callback header Secret must carry to be used (in the agent's namespace). */
export const HEADERS_LABEL = `${GROUP}/callback-headers`;

/** Where {@linkcode CallbackHeaders} reads Secrets. */
export interface CallbackHeadersOptions {
  /** Reads the Secrets. */
  core: Pick<CoreV1Api, "readNamespacedSecret">;
  /** The agent's namespace: Secrets are read from it only. */
  namespace: string;
  log: Logger;
}

/** The headers of each callback header Secret the armed traps name. */
export class CallbackHeaders {
  readonly #o: CallbackHeadersOptions;
  readonly #headers = new Map<string, Record<string, string>>();

  /** @param options The API, the namespace and the log. */
  constructor(options: CallbackHeadersOptions) {
    this.#o = options;
  }

  /** The headers of a Secret, as last read; `undefined` before or when it cannot be used. */
  get(secretName: string): Record<string, string> | undefined {
    return this.#headers.get(secretName);
  }

  /**
   * Reads every Secret the registrations name and forgets the others. A Secret that cannot be
   * read, or lacks the label, is logged and leaves its callbacks without those headers.
   *
   * @param secretNames The Secrets the armed traps name.
   */
  async refresh(secretNames: Iterable<string>): Promise<void> {
    const names = new Set(secretNames);
    for (const name of this.#headers.keys()) if (!names.has(name)) this.#headers.delete(name);
    for (const name of names) {
      try {
        const secret = await this.#o.core.readNamespacedSecret({
          name,
          namespace: this.#o.namespace,
        });
        if (secret.metadata?.labels?.[HEADERS_LABEL] !== "true") {
          this.#o.log.warn("callback header Secret ignored: it lacks the label", {
            secret: name,
            label: `${HEADERS_LABEL}=true`,
          });
          this.#headers.delete(name);
          continue;
        }
        const headers: Record<string, string> = {};
        for (const [key, value] of Object.entries(secret.data ?? {})) headers[key] = atob(value);
        for (const [key, value] of Object.entries(secret.stringData ?? {})) headers[key] = value;
        this.#headers.set(name, headers);
      } catch (error) {
        this.#o.log.warn("cannot read callback header Secret", {
          secret: name,
          error: describe(error),
        });
      }
    }
  }
}
