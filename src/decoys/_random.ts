/**
 * Random strings for decoy secrets, from the system's CSPRNG, each character drawn without
 * modulo bias. Private to src/decoys/.
 *
 * @module
 */

/** Letters and digits, as most API tokens use. */
export const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/** Lower-case hexadecimal digits. */
export const HEX = "0123456789abcdef";
/** Decimal digits. */
export const DIGITS = "0123456789";
/** The base64 alphabet, as AWS secret keys use it. */
export const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * `length` characters drawn uniformly from `alphabet`.
 *
 * @param alphabet At most 256 distinct characters.
 * @param length How many to draw.
 */
export function randomString(alphabet: string, length: number): string {
  // Bytes at or above the largest multiple of the alphabet's size are redrawn.
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (byte < limit && out.length < length) out += alphabet[byte % alphabet.length];
    }
  }
  return out;
}
