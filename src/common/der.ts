/**
 * Just enough DER (ITU-T X.690) to write X.509 certificates (the webhooks' own and decoy
 * kubeconfigs'): each function returns one complete TLV, plus PEM armour.
 *
 * @module
 */

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** One TLV: the tag byte, the definite length, the content. */
export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = concat(...content);
  const length = body.length;
  if (length < 0x80) return concat(Uint8Array.of(tag, length), body);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return concat(Uint8Array.of(tag, 0x80 | bytes.length, ...bytes), body);
}

/** SEQUENCE of the given TLVs. */
export const sequence = (...items: Uint8Array[]): Uint8Array => tlv(0x30, ...items);
/** SET of the given TLVs (callers give one item, so no sorting is needed). */
export const set = (...items: Uint8Array[]): Uint8Array => tlv(0x31, ...items);
/** `[n] EXPLICIT`, context-specific and constructed. */
export const explicit = (n: number, item: Uint8Array): Uint8Array => tlv(0xa0 | n, item);
/** UTF8String. */
export const utf8 = (text: string): Uint8Array => tlv(0x0c, new TextEncoder().encode(text));
/** BOOLEAN. */
export const boolean = (value: boolean): Uint8Array => tlv(0x01, Uint8Array.of(value ? 0xff : 0));
/** OCTET STRING. */
export const octets = (bytes: Uint8Array): Uint8Array => tlv(0x04, bytes);
/** BIT STRING with no unused bits. */
export const bits = (bytes: Uint8Array): Uint8Array => tlv(0x03, Uint8Array.of(0), bytes);

/** INTEGER from unsigned big-endian bytes (a zero byte is prepended where the top bit is set). */
export function unsigned(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, trimmed[0] & 0x80 ? concat(Uint8Array.of(0), trimmed) : trimmed);
}

/** INTEGER from a small non-negative number. */
export const small = (n: number): Uint8Array => unsigned(Uint8Array.of(n));

/** OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Uint8Array {
  const [first, second, ...rest] = dotted.split(".").map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const groups: number[] = [];
    for (let value = arc;; value = Math.floor(value / 128)) {
      groups.unshift((value % 128) | (groups.length ? 0x80 : 0));
      if (value < 128) break;
    }
    bytes.push(...groups);
  }
  return tlv(0x06, Uint8Array.from(bytes));
}

/** UTCTime (years 1950-2049) or GeneralizedTime, as RFC 5280 requires, to the second. */
export function time(date: Date): Uint8Array {
  const iso = date.toISOString(); // 2026-12-04T21:33:00.000Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, "") + "Z"; // 20261204213300Z
  const year = date.getUTCFullYear();
  const ascii = (text: string) => new TextEncoder().encode(text);
  return year >= 1950 && year < 2050 ? tlv(0x17, ascii(digits.slice(2))) : tlv(0x18, ascii(digits));
}

/** Wraps DER in PEM armour with the given label. */
export function pem(label: string, der: Uint8Array): string {
  const base64 = btoa(String.fromCharCode(...der));
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
