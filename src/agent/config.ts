/**
 * The agent's flags checked in one zod schema before anything is touched: a bad value ends the
 * program with exit code 2 and a message naming the flag and what it accepts, instead of
 * surfacing later (a bad `--max-traps` once failed only when the agent became leader, which
 * then gave up its Lease and retried forever).
 *
 * @module
 */
import { z } from "zod";
import { BACKENDS } from "../engine/mod.ts";

/** Largest trap map the engine accepts (`1 << 24` entries). */
export const MAX_TRAPS_LIMIT = 1 << 24;

function integerFlag(flag: string, min: number, max: number) {
  return z.string().trim().refine(
    (text) => /^\d+$/.test(text) && Number(text) >= min && Number(text) <= max,
    { message: `${flag} must be a whole number from ${min} to ${max}` },
  ).transform(Number);
}

/** The flags that take values with rules, as strings from the command line. */
const flagSchema = z.object({
  backend: z.enum(["auto", ...BACKENDS], {
    error: () => `--backend must be auto or one of ${BACKENDS.join(", ")}`,
  }),
  output: z.enum(["text", "json"], { error: () => "--output must be text or json" }),
  "log-level": z.enum(["debug", "info", "warn", "error"], {
    error: () => "--log-level must be debug, info, warn or error",
  }),
  "max-traps": integerFlag("--max-traps", 1, MAX_TRAPS_LIMIT),
  "metrics-port": integerFlag("--metrics-port", 0, 65535),
  "webhook-port": integerFlag("--webhook-port", 0, 65535),
  "lease-seconds": integerFlag("--lease-seconds", 2, 3600),
  "bpf-pin-dir": z.string().refine(
    (path) => path === "" || (path.startsWith("/") && !path.split("/").includes("..")),
    { message: '--bpf-pin-dir must be an absolute path on bpffs, or "" to run unpinned' },
  ),
});

/** The checked values. */
export type AgentFlags = z.infer<typeof flagSchema>;

/**
 * Checks the agent's flags.
 *
 * @param values The parsed flags (strings as given, defaults filled in).
 * @returns The typed values, or every problem as `--flag: what it accepts, got "value"`.
 */
export function checkAgentFlags(
  values: Record<string, unknown>,
): { ok: true; flags: AgentFlags } | { ok: false; problems: string[] } {
  const result = flagSchema.safeParse(values);
  if (result.success) return { ok: true, flags: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? "");
      return `${issue.message}, got ${JSON.stringify(values[key])}`;
    }),
  };
}
