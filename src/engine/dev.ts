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
