/**
 * Device numbers in their three encodings: glibc's `st_dev` (`makedev`), the kernel's internal
 * `major << 20 | minor` (what the BPF programs read in `s_dev`), and major/minor apart.
 *
 * @module
 */

/**
 * Converts a device number from the user-space encoding (`st_dev` of stat(2), glibc's
 * `makedev`) to the kernel's internal encoding (`major << 20 | minor`, the value of
 * `inode->i_sb->s_dev` that the BPF programs read).
 *
 * @param stDev `Deno.FileInfo.dev`
 * @returns the kernel encoding
 * @throws {RangeError} when major or minor do not fit the kernel's 12 and 20 bits
 *
 * @example
 * ```ts
 * toKernelDev(0xfe00); // 254:0 -> 266338304
 * ```
 */
export function toKernelDev(stDev: number | bigint): number {
  const dev = BigInt(stDev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  if (major >= 1n << 12n || minor >= 1n << 20n || major < 0n || minor < 0n) {
    throw new RangeError(
      `Device ${major}:${minor} (st_dev ${stDev}) does not fit the kernel encoding`,
    );
  }
  return Number((major << 20n) | minor);
}

/**
 * Splits a kernel-encoded device number into major and minor.
 *
 * @param dev `major << 20 | minor`
 */
export function splitKernelDev(dev: number): { major: number; minor: number } {
  return { major: Math.floor(dev / 2 ** 20), minor: dev % 2 ** 20 };
}

/**
 * glibc's `makedev()`: the `st_dev` that stat(2) reports for a major and minor.
 *
 * @param major Device major number.
 * @param minor Device minor number.
 */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) |
    (mi & 0xffn);
}

/**
 * The kernel's encoding of a major and minor, `major << 20 | minor`.
 *
 * @param major Device major number (12 bits).
 * @param minor Device minor number (20 bits).
 */
export function kernelDev(major: number, minor: number): number {
  return major * 2 ** 20 + minor;
}
