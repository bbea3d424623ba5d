/**
 * The agent's operational log: one line per message on stderr, `<time>\t<LEVEL>\t<message>`
 * followed by a JSON object of fields when there are any. Alerts go to stdout, never here.
 *
 * @module
 */
import { rfc3339 } from "../common/time.ts";

/** Severity of a log line. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Writes log lines. */
export interface Logger {
  /** Logs detail useful when chasing a problem, dropped by default. */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Logs normal operation. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Logs a failure the agent recovers from, such as a watch it restarts. */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Logs a failure that needs attention. */
  error(message: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

function errorFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error
      ? `${value.message}${
        value.cause ? ` (cause: ${(value.cause as Error).message ?? value.cause})` : ""
      }`
      : value;
  }
  return out;
}

/**
 * Creates a logger writing to stderr.
 *
 * @param minimum Lines below this level are dropped.
 * @param write Where lines go; stderr by default.
 * @returns The logger.
 */
export function createLogger(
  minimum: LogLevel = "info",
  write: (line: string) => void = (line) => console.error(line),
): Logger {
  const emit = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < ORDER[minimum]) return;
    const time = rfc3339();
    const suffix = fields && Object.keys(fields).length > 0
      ? `\t${
        JSON.stringify(errorFields(fields), (_k, v) => typeof v === "bigint" ? v.toString() : v)
      }`
      : "";
    write(`${time}\t${level.toUpperCase()}\t${message}${suffix}`);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}
