/**
 * Small helpers the benchmark phases share: sleeping, running a command that must succeed,
 * and running work with bounded concurrency.
 *
 * @module
 */

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs a command that must succeed.
 *
 * @throws {Error} with the command's last 30 lines of stderr when it fails
 */
export async function run(command: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).split("\n").slice(-30).join("\n");
    throw new Error(`${command} ${args.join(" ")} failed (exit ${out.code}): ${text}`);
  }
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function pool<T>(
  items: T[],
  limit: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}
