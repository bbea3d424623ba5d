/**
 * The decoy id: 16 characters of RFC 4648 base32 (A-Z, 2-7), 80 bits, embedded in the generated
 * credentials and reported in status and alerts, so a credential that turns up later points
 * back to the pod it was planted in.
 *
 * The id is not stored anywhere: it is an HMAC of the new file's identity (device, inode, birth
 * time) and of where it was planted, keyed by the policy's uid, which no container can read. A
 * restarted agent that finds the file again derives the same id, without reading the file (that
 * would be an access to the trap), and a file the container replaced gets no id. The file's
 * mtime fraction carries a second HMAC, the {@linkcode decoyMark}, which tells a decoy the agent
 * created from a file that was there before it.
 *
 * @module
 */
import { createHmac } from "node:crypto";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** Where a decoy was planted and the identity of the file it was planted in. */
export interface DecoyPlace {
  /** The policy's uid: the key, unknown inside containers. */
  policyUid: string;
  trapIndex: number;
  podUid: string;
  containerName: string;
  /** Kernel device number of the file system. */
  dev: number;
  /** Inode number, decimal. */
  ino: string;
  /** Birth time in ns, decimal, where the file system keeps one. */
  btime?: string;
}

function mac(place: DecoyPlace, purpose: string): Uint8Array {
  const message = [
    purpose,
    place.trapIndex,
    place.podUid,
    place.containerName,
    place.dev,
    place.ino,
    place.btime ?? "",
  ].join("\u0000");
  return new Uint8Array(createHmac("sha256", place.policyUid).update(message).digest());
}

/** Encodes bytes in base32 without padding, 5 bits per character. */
export function base32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let held = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    held += 8;
    while (held >= 5) {
      out += BASE32[(buffer >> (held - 5)) & 31];
      held -= 5;
    }
    buffer &= (1 << held) - 1;
  }
  return held > 0 ? out + BASE32[(buffer << (5 - held)) & 31] : out;
}

/**
 * The decoy id of a file.
 *
 * @param place The file's identity and where it is planted.
 * @returns 16 characters of A-Z and 2-7.
 */
export function decoyId(place: DecoyPlace): string {
  return base32(mac(place, "id").subarray(0, 10));
}

/**
 * The nanoseconds the agent sets as a created decoy's mtime fraction, and later checks: a file
 * whose mtime fraction matches was created by the agent as this decoy (one chance in a billion
 * otherwise) and still holds what it wrote (a write sets a new mtime).
 *
 * @param place The file's identity and where it is planted.
 * @returns An integer from 0 to 999,999,999.
 */
export function decoyMark(place: DecoyPlace): number {
  const bytes = mac(place, "mark");
  return new DataView(bytes.buffer).getUint32(0) % 1_000_000_000;
}

/** Whether `text` has the shape of a decoy id. */
export function isDecoyId(text: string): boolean {
  return /^[A-Z2-7]{16}$/.test(text);
}
