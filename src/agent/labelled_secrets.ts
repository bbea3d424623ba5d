/**
 * Secrets of the agent's own namespace that a policy may name, read in the background into a
 * cache. Only Secrets carrying the label their use requires are taken: a policy must not be
 * able to make the agent copy other Secrets (its own TLS key, say) into a callback or a file.
 *
 * @module
 */
import type { CoreV1Api } from "@kubernetes/client-node";
import { apiStatus } from "../kube/mod.ts";
import { describe } from "./describe.ts";
import type { Logger } from "./log.ts";

/** What became of reading one Secret. */
export type SecretRead =
  | { ok: true; data: Record<string, string> }
  | { ok: false; reason: SecretProblem; message: string };

/** Why a Secret cannot be used. */
export type SecretProblem = "SecretNotFound" | "SecretNotLabelled" | "SecretUnreadable";

/** Where {@linkcode LabelledSecrets} reads and what it requires. */
export interface LabelledSecretsOptions {
  /** Reads the Secrets. */
  core: Pick<CoreV1Api, "readNamespacedSecret">;
  /** The agent's namespace: Secrets are read from it only. */
  namespace: string;
  /** The label that must be `"true"` on a Secret for it to be used. */
  label: string;
  /** What the Secrets are for, in log lines: `callback header Secret`. */
  what: string;
  log: Logger;
}

/** The data of each labelled Secret last asked for, or why it cannot be used. */
export class LabelledSecrets {
  readonly #o: LabelledSecretsOptions;
  readonly #reads = new Map<string, SecretRead>();

  /** @param options The API, the namespace, the label and the log. */
  constructor(options: LabelledSecretsOptions) {
    this.#o = options;
  }

  /** The last read of a Secret; `undefined` before the first {@linkcode LabelledSecrets.refresh} naming it. */
  get(name: string): SecretRead | undefined {
    return this.#reads.get(name);
  }

  /**
   * Reads every Secret named and forgets the others. A Secret that cannot be read, or lacks the
   * label, is logged when that first happens and kept as the problem.
   *
   * @param names The Secrets in use.
   */
  async refresh(names: Iterable<string>): Promise<void> {
    const wanted = new Set(names);
    for (const name of this.#reads.keys()) if (!wanted.has(name)) this.#reads.delete(name);
    for (const name of wanted) {
      const read = await this.#read(name);
      const before = this.#reads.get(name);
      this.#reads.set(name, read);
      if (!read.ok && (before === undefined || before.ok || before.reason !== read.reason)) {
        this.#o.log.warn(`${this.#o.what} not used`, {
          secret: name,
          reason: read.reason,
          error: read.message,
        });
      }
    }
  }

  async #read(name: string): Promise<SecretRead> {
    const { namespace, label } = this.#o;
    try {
      const secret = await this.#o.core.readNamespacedSecret({ name, namespace });
      if (secret.metadata?.labels?.[label] !== "true") {
        return {
          ok: false,
          reason: "SecretNotLabelled",
          message: `Secret ${namespace}/${name} lacks the label ${label}=true; ` +
            `add it with: kubectl label secret -n ${namespace} ${name} ${label}=true`,
        };
      }
      const data: Record<string, string> = {};
      for (const [key, value] of Object.entries(secret.data ?? {})) data[key] = atob(value);
      for (const [key, value] of Object.entries(secret.stringData ?? {})) data[key] = value;
      return { ok: true, data };
    } catch (error) {
      const missing = apiStatus(error) === 404 || /\b404\b/.test(describe(error));
      return {
        ok: false,
        reason: missing ? "SecretNotFound" : "SecretUnreadable",
        message: missing
          ? `Secret ${namespace}/${name} does not exist; create it in the agent's namespace`
          : `Cannot read Secret ${namespace}/${name}: ${describe(error)}`,
      };
    }
  }
}
