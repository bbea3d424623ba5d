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
import { LabelledSecrets } from "./labelled_secrets.ts";
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
  readonly #secrets: LabelledSecrets;

  /** @param options The API, the namespace and the log. */
  constructor(options: CallbackHeadersOptions) {
    this.#secrets = new LabelledSecrets({
      ...options,
      label: HEADERS_LABEL,
      what: "callback header Secret",
    });
  }

  /** The headers of a Secret, as last read; `undefined` before or when it cannot be used. */
  get(secretName: string): Record<string, string> | undefined {
    const read = this.#secrets.get(secretName);
    return read?.ok ? read.data : undefined;
  }

  /**
   * Reads every Secret the registrations name and forgets the others. A Secret that cannot be
   * read, or lacks the label, is logged and leaves its callbacks without those headers.
   *
   * @param secretNames The Secrets the armed traps name.
   */
  refresh(secretNames: Iterable<string>): Promise<void> {
    return this.#secrets.refresh(secretNames);
  }
}
