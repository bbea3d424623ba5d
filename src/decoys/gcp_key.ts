/**
 * A Google Cloud service account key file (the JSON `gcloud iam service-accounts keys create`
 * writes), with a real RSA 2048 private key. RSA keys take a tenth of a second or more to make,
 * so they come from {@linkcode RsaKeys}, which makes them off the event loop.
 *
 * @module
 */
import { DIGITS, HEX, randomString } from "./_random.ts";
import { pem } from "../common/der.ts";
import type { DecoyOptions } from "./text_decoys.ts";

/** Options of {@linkcode RsaKeys}. */
export interface RsaKeysOptions {
  /** Keys made per minute at most. Default 12. */
  perMinute?: number;
  /** The clock, in ms. */
  now?: () => number;
}

/**
 * RSA private keys made ahead of need by WebCrypto, whose key generation runs on a thread of
 * its own: {@linkcode RsaKeys.ready} waits until one is there, {@linkcode RsaKeys.take} hands
 * it out synchronously (the decoy is written between creating the file and closing it).
 *
 * A container that deletes its decoy over and over makes the agent plant a new one each time:
 * so that this cannot keep a core busy making keys, at most `perMinute` are made a minute, and
 * past that the last key is handed out again (each file still has ids of its own).
 */
export class RsaKeys {
  readonly #spare: string[] = [];
  readonly #perMinute: number;
  readonly #now: () => number;
  readonly #made: number[] = [];
  #last?: string;

  /** @param options How many keys a minute at most; the clock. */
  constructor(options: RsaKeysOptions = {}) {
    this.#perMinute = options.perMinute ?? 12;
    this.#now = options.now ?? Date.now;
  }

  /** Makes a key unless one is spare, or the minute's keys are made (the last is reused). */
  async ready(): Promise<void> {
    if (this.#spare.length > 0) return;
    const now = this.#now();
    while (this.#made.length > 0 && now - this.#made[0] >= 60_000) this.#made.shift();
    if (this.#last !== undefined && this.#made.length >= this.#perMinute) return;
    this.#made.push(now);
    const pair = await crypto.subtle.generateKey(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
      true,
      ["sign", "verify"],
    );
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    this.#spare.push(pem("PRIVATE KEY", pkcs8));
  }

  /**
   * A spare key, PEM (PKCS #8), which is then no longer spare.
   *
   * @throws {Error} when none is spare: call {@linkcode RsaKeys.ready} first.
   */
  take(): string {
    const key = this.#spare.pop() ?? this.#last;
    if (key === undefined) throw new Error("No RSA key is ready: await RsaKeys.ready() first");
    this.#last = key;
    return key;
  }
}

/**
 * The service account key file.
 *
 * @param id The decoy id, in the account's e-mail address.
 * @param options `project` and `account`.
 * @param privateKeyPem An RSA private key, PKCS #8 PEM.
 */
export function gcpServiceAccount(
  id: string,
  options: DecoyOptions,
  privateKeyPem: string,
): string {
  const project = options.project ?? "prod-platform";
  const email = `${
    options.account ?? "deployer"
  }-${id.toLowerCase()}@${project}.iam.gserviceaccount.com`;
  const key = {
    type: "service_account",
    project_id: project,
    private_key_id: randomString(HEX, 40),
    private_key: privateKeyPem,
    client_email: email,
    client_id: `1${randomString(DIGITS, 20)}`,
    auth_uri: "https://accounts.google.com/o/oauth2/auth",
    token_uri: "https://oauth2.googleapis.com/token",
    auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs",
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${
      encodeURIComponent(email)
    }`,
    universe_domain: "googleapis.com",
  };
  return `${JSON.stringify(key, null, 2)}\n`;
}
