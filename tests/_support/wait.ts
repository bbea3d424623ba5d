/**
 * Polling for tests that wait on a real system: bounded, and the error names what never
 * happened (with the last error as its cause).
 *
 * @module
 */

/**
 * Polls until `probe` returns something other than `undefined` or `false`.
 *
 * @param what What is awaited, for the error message.
 * @param probe Called every `intervalMs`; thrown errors count as "not yet".
 * @param seconds How long to wait at most. Default 60.
 * @param intervalMs Pause between probes. Default 200.
 * @returns The probe's value.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  seconds = 60,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`Timed out after ${seconds} s waiting for ${what}`, { cause: lastError });
}
