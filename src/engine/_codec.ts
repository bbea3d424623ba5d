/**
 * Encoding of the trap map's key and of cgroup ids as the kernel programs read them
 * (little-endian, `struct trap_key` in bpf/trap.h).
 *
 * @module
 */
import { TRAP_KEY_SIZE } from "./_event.ts";
import type { TrapKey } from "./types.ts";

/** The key as a map key of our own, `dev:ino`. */
export function keyString(key: TrapKey): string {
  return `${key.dev}:${key.ino}`;
}

/** `struct trap_key` bytes. */
export function encodeKey(key: TrapKey): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(TRAP_KEY_SIZE);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(key.dev), true);
  v.setBigUint64(8, key.ino, true);
  return out;
}

/**
 * Checks a key's ranges.
 *
 * @throws {RangeError} naming the field
 */
export function checkKey(key: TrapKey): void {
  if (!Number.isInteger(key.dev) || key.dev < 0 || key.dev >= 2 ** 32) {
    throw new RangeError(`Trap key dev must be a kernel device number, got ${key.dev}`);
  }
  if (typeof key.ino !== "bigint" || key.ino < 0n || key.ino >= 1n << 64n) {
    throw new RangeError(`Trap key ino must be a 64-bit bigint, got ${String(key.ino)}`);
  }
}

/** A cgroup id as the cgroup filter map's key. */
export function encodeCgroupId(id: bigint): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, id, true);
  return out;
}

/** Decodes `struct trap_key` bytes. */
export function decodeKey(bytes: Uint8Array): TrapKey {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { dev: Number(view.getBigUint64(0, true)), ino: view.getBigUint64(8, true) };
}
