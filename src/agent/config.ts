/**
 * The agent's flags checked in one zod schema before anything is touched: a bad value ends the
 * program with exit code 2 and a message naming the flag and what it accepts, instead of
 * surfacing later (a bad `--max-traps` once failed only when the agent became leader, which
 * then gave up its Lease and retried forever).
 *
 * @module
 */
import { ALERT_FORMATS } from "../delivery/mod.ts";
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
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

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function nameFlag(flag: string, kind: "subdomain" | "label") {
  const [pattern, max, what] = kind === "subdomain"
    ? [DNS_SUBDOMAIN, 253, "a DNS subdomain (lowercase letters, digits, '-' and '.')"]
    : [DNS_LABEL, 63, "a DNS label (lowercase letters, digits and '-')"];
  return z.string({ error: () => `${flag} is required` }).refine(
    (text) => text.length <= max && pattern.test(text),
    { message: `${flag} must be ${what} of at most ${max} characters` },
  );
}

function absolutePath(flag: string) {
  return z.string().refine(
    (path) => path.startsWith("/") && !path.split("/").includes("..") && !path.includes("\0"),
    { message: `${flag} must be an absolute path without ".."` },
  );
}

/** The flags that take values with rules, as strings from the command line. */
const flagSchema = z.object({
  // Defaults come from the environment the DaemonSet sets: $NODE_NAME and $POD_NAMESPACE.
  node: nameFlag("--node (or $NODE_NAME)", "subdomain"),
  namespace: nameFlag("--namespace (or $POD_NAMESPACE)", "label"),
  // Part of Lease names, labels and pin directories: a boot id is a UUID.
  "kernel-id": z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, {
    message: "--kernel-id must be 1-63 letters, digits, '-', '_' or '.' (a boot id is a UUID)",
  }).optional(),
  proc: absolutePath("--proc"),
  "cgroup-root": absolutePath("--cgroup-root").optional(),
  "webhook-service": nameFlag("--webhook-service", "label"),
  backend: z.enum(["auto", ...BACKENDS], {
    error: () => `--backend must be auto or one of ${BACKENDS.join(", ")}`,
  }),
  output: z.enum(["text", "json"], { error: () => "--output must be text or json" }),
  "alert-format": z.enum(ALERT_FORMATS, {
    error: () => `--alert-format must be one of ${ALERT_FORMATS.join(", ")}`,
  }).default("kive"),
  "log-level": z.enum(["debug", "info", "warn", "error"], {
    error: () => "--log-level must be debug, info, warn or error",
  }),
  "max-traps": integerFlag("--max-traps", 1, MAX_TRAPS_LIMIT),
  "metrics-port": integerFlag("--metrics-port", 0, 65535),
  "webhook-port": integerFlag("--webhook-port", 0, 65535),
  "lease-seconds": integerFlag("--lease-seconds", 2, 3600),
  "verify-seconds": integerFlag("--verify-seconds", 1, 86400),
  "callback-timeout-seconds": integerFlag("--callback-timeout-seconds", 1, 300),
  "callback-retry-seconds": integerFlag("--callback-retry-seconds", 1, 86400),
  "bpf-pin-dir": z.string().refine(
    (path) => path === "" || (path.startsWith("/") && !path.split("/").includes("..")),
    { message: '--bpf-pin-dir must be an absolute path on bpffs, or "" to run unpinned' },
  ),
  "webhook-cert-file": absolutePath("--webhook-cert-file").optional(),
  "webhook-key-file": absolutePath("--webhook-key-file").optional(),
}).superRefine((flags, ctx) => {
  if ((flags["webhook-cert-file"] === undefined) !== (flags["webhook-key-file"] === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["webhook-cert-file"],
      message: "--webhook-cert-file and --webhook-key-file go together: give both or neither",
    });
  }
});

/** The checked values. */
export type AgentFlags = z.infer<typeof flagSchema>;

/** The `webhook` command's flags. */
const webhookFlagSchema = z.object({
  cert: z.string({ error: () => "--cert is required (a PEM certificate file)" }).min(1),
  key: z.string({ error: () => "--key is required (a PEM private key file)" }).min(1),
  port: integerFlag("--port", 1, 65535),
  host: z.string().min(1, { message: "--host must be an address to listen on" }),
});

/** The `webhook` command's checked values. */
export type WebhookFlags = z.infer<typeof webhookFlagSchema>;

/**
 * Checks the `webhook` command's flags.
 *
 * @param values The parsed flags.
 * @returns The typed values, or every problem naming its flag.
 */
export function checkWebhookFlags(
  values: Record<string, unknown>,
): { ok: true; flags: WebhookFlags } | { ok: false; problems: string[] } {
  return checkWith(webhookFlagSchema, values);
}

/**
 * Checks the agent's flags.
 *
 * @param values The parsed flags (strings as given, defaults filled in).
 * @returns The typed values, or every problem as `--flag: what it accepts, got "value"`.
 */
export function checkAgentFlags(
  values: Record<string, unknown>,
): { ok: true; flags: AgentFlags } | { ok: false; problems: string[] } {
  return checkWith(flagSchema, values);
}

function checkWith<T>(
  schema: z.ZodType<T>,
  values: Record<string, unknown>,
): { ok: true; flags: T } | { ok: false; problems: string[] } {
  const result = schema.safeParse(values);
  if (result.success) return { ok: true, flags: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? "");
      const got = values[key] === undefined ? "nothing" : JSON.stringify(values[key]);
      return `${issue.message}, got ${got}`;
    }),
  };
}

/**
 * Parses command-line flags, turning an unknown flag or a missing value into problems (the
 * caller exits 2) instead of an exception.
 *
 * @param args The arguments.
 * @param options parseArgs options.
 * @returns The values, or the problem.
 */
export function parseFlags<O extends ParseArgsOptionsConfig>(
  args: string[],
  options: O,
): { ok: true; values: ReturnType<typeof parseArgs<{ args: string[]; options: O }>>["values"] } | {
  ok: false;
  problems: string[];
} {
  try {
    return { ok: true, values: parseArgs({ args, options }).values };
  } catch (error) {
    return { ok: false, problems: [(error as Error).message] };
  }
}
