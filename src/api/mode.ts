/**
 * File permission modes written like `chmod` arguments.
 *
 * YAML has no octal integer in the form people type for permissions, so `mode: 444` reaches the
 * API server as the decimal integer 444. We read its decimal digits as octal digits, exactly as
 * `chmod 444` does: 444 means r--r--r-- (0o444), 4755 means setuid rwxr-xr-x (0o4755). A digit
 * 8 or 9, a negative number, or more than four digits cannot be a permission and is rejected.
 *
 * @module
 */

/** The largest value {@linkcode parseMode} accepts: `chmod 7777`. */
export const MAX_MODE = 7777;

/**
 * Tells whether `value` is a valid chmod-style mode (0 to 7777, digits 0-7 only).
 *
 * @param value The integer as written in YAML.
 * @returns `true` when {@linkcode parseMode} accepts it.
 */
export function isChmodMode(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= MAX_MODE && /^[0-7]+$/.test(`${value}`);
}

/**
 * Reads a chmod-style mode such as `444` as the permission bits it means (0o444 = 292).
 *
 * @example
 * ```ts
 * parseMode(444); // 0o444
 * parseMode(4755); // 0o4755
 * ```
 *
 * @param value The integer as written in YAML.
 * @returns The permission bits.
 * @throws {RangeError} When `value` has a digit 8 or 9, is negative, or is above 7777.
 */
export function parseMode(value: number): number {
  if (!isChmodMode(value)) {
    throw new RangeError(
      `Cannot read mode ${value}: write it like chmod, with digits 0-7 up to 7777 (444 means r--r--r--)`,
    );
  }
  return parseInt(`${value}`, 8);
}

/**
 * Writes permission bits back in the chmod-style form the API uses (0o444 -> 444).
 *
 * @param bits Permission bits, 0 to 0o7777.
 * @returns The integer a user would write in YAML.
 * @throws {RangeError} When `bits` is outside 0 to 0o7777.
 */
export function formatMode(bits: number): number {
  if (!Number.isInteger(bits) || bits < 0 || bits > 0o7777) {
    throw new RangeError(`Cannot format mode bits ${bits}: must be between 0 and 0o7777`);
  }
  return Number(bits.toString(8));
}

/**
 * Renders permission bits as `ls -l` does, without the file type (0o444 -> "r--r--r--").
 *
 * @param bits Permission bits, 0 to 0o7777.
 * @returns Nine characters, with s/S/t/T for the setuid, setgid and sticky bits.
 */
export function modeString(bits: number): string {
  const triplet = (shift: number, special: boolean, specialChar: string): string => {
    const r = bits & (0o4 << shift) ? "r" : "-";
    const w = bits & (0o2 << shift) ? "w" : "-";
    const executable = (bits & (0o1 << shift)) !== 0;
    const x = special
      ? (executable ? specialChar : specialChar.toUpperCase())
      : (executable ? "x" : "-");
    return r + w + x;
  };
  return triplet(6, (bits & 0o4000) !== 0, "s") + triplet(3, (bits & 0o2000) !== 0, "s") +
    triplet(0, (bits & 0o1000) !== 0, "t");
}
