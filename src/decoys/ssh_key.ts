/**
 * An OpenSSH ed25519 private key (`-----BEGIN OPENSSH PRIVATE KEY-----`, unencrypted), the
 * format `ssh-keygen -t ed25519` writes, with the decoy id in the key's comment.
 *
 * @module
 */
import { generateKeyPairSync } from "node:crypto";
import { concat } from "../common/der.ts";
import type { DecoyOptions } from "./text_decoys.ts";

const encoder = new TextEncoder();

function uint32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value);
  return bytes;
}

/** An SSH wire-format string: length, then the bytes. */
function sshString(value: Uint8Array | string): Uint8Array {
  const bytes = typeof value === "string" ? encoder.encode(value) : value;
  return concat(uint32(bytes.length), bytes);
}

function fromBase64Url(text: string): Uint8Array {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(
    atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")),
    (c) => c.charCodeAt(0),
  );
}

/**
 * A fresh ed25519 key in OpenSSH's private key format (PROTOCOL.key in OpenSSH's sources).
 *
 * @param id The decoy id, in the comment as `<user>-<id>@<host>`.
 * @param options `user` and `host` of the comment.
 */
export function sshPrivateKey(id: string, options: DecoyOptions): string {
  const jwk = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
  const seed = fromBase64Url(String(jwk.d));
  const publicKey = fromBase64Url(String(jwk.x));
  const comment = `${options.user ?? "deploy"}-${id.toLowerCase()}@${options.host ?? "bastion"}`;
  const publicBlob = concat(sshString("ssh-ed25519"), sshString(publicKey));
  const check = uint32(crypto.getRandomValues(new Uint32Array(1))[0]);
  let secret = concat(
    check,
    check,
    sshString("ssh-ed25519"),
    sshString(publicKey),
    sshString(concat(seed, publicKey)),
    sshString(comment),
  );
  // Padded to the cipher's block size (8 for "none") with the bytes 1, 2, 3, ...
  const padding = (8 - (secret.length % 8)) % 8;
  secret = concat(secret, Uint8Array.from({ length: padding }, (_, i) => i + 1));
  const body = concat(
    encoder.encode("openssh-key-v1\u0000"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    uint32(1),
    sshString(publicBlob),
    sshString(secret),
  );
  const base64 = btoa(String.fromCharCode(...body));
  const lines = base64.match(/.{1,70}/g) ?? [];
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n` +
    "-----END OPENSSH PRIVATE KEY-----\n";
}
