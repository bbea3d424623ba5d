/**
 * Trap keys in user space: their string form and their range check (their bytes are in
 * _structs.ts).
 *
 * @module
 */
import type { TrapKey } from "./types.ts";

/** The key as a map key of our own, `dev:ino`. */
export function keyString(key: TrapKey): string {
  return `${key.dev}:${key.ino}`;
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
