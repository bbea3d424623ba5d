/**
 * Decoy content worth stealing: credentials in the exact format the real tool writes, each copy
 * unique and carrying a decoy id that points back to the pod it was planted in. Every key is
 * fresh and random and belongs to nothing. docs/DECOYS.md lists the kinds.
 *
 * @example
 * ```ts
 * const decoys = new DecoyFactory();
 * await decoys.ready("gcp-service-account");
 * const text = decoys.make("aws-credentials", "ABCDEFGHIJKLMNOP", { region: "eu-west-1" });
 * ```
 *
 * @module
 */
import type { DecoyKind } from "../api/decoy_kinds.ts";
import { gcpServiceAccount, RsaKeys } from "./gcp_key.ts";
import { kubeconfig } from "./kubeconfig.ts";
import { sshPrivateKey } from "./ssh_key.ts";
import {
  awsCredentials,
  type DecoyOptions,
  dockerConfig,
  dotenv,
  gitCredentials,
  npmrc,
  pgpass,
} from "./text_decoys.ts";

export { base32, decoyId, decoyMark, type DecoyPlace, isDecoyId } from "./decoy_id.ts";
export type { DecoyOptions } from "./text_decoys.ts";

type SyncMaker = (id: string, options: DecoyOptions) => string;

const MAKERS: Record<Exclude<DecoyKind, "gcp-service-account">, SyncMaker> = {
  "aws-credentials": awsCredentials,
  kubeconfig,
  "ssh-private-key": sshPrivateKey,
  dotenv,
  "docker-config": dockerConfig,
  pgpass,
  "git-credentials": gitCredentials,
  npmrc,
};

/** Makes decoys of every kind; keeps the RSA keys it made ahead for the kinds that need one. */
export class DecoyFactory {
  readonly #rsa = new RsaKeys();

  /** Prepares what {@linkcode DecoyFactory.make} of this kind needs and cannot make at once. */
  async ready(kind: DecoyKind): Promise<void> {
    if (kind === "gcp-service-account") await this.#rsa.ready();
  }

  /**
   * One decoy's content.
   *
   * @param kind What to make.
   * @param id The decoy id to embed (see decoy_id.ts).
   * @param options The kind's options, already validated by the API.
   * @throws {Error} for `gcp-service-account` without a {@linkcode DecoyFactory.ready} before.
   */
  make(kind: DecoyKind, id: string, options: DecoyOptions = {}): string {
    if (kind === "gcp-service-account") return gcpServiceAccount(id, options, this.#rsa.take());
    return MAKERS[kind](id, options);
  }
}
