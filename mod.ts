/**
 * kivebpf: plants trap files in Kubernetes pods and reports every access to them with eBPF.
 *
 * This is the program's entry point. Commands:
 *
 * - `webhook --cert FILE --key FILE [--port 9443]`: serves the KivePolicy conversion and
 *   validating webhooks over TLS.
 * - `agent`: the node agent (see `kivebpf agent --help`).
 * - `crd`: prints the KivePolicy CRD as YAML.
 * - `status [policy]`: what is armed per policy and node, and why the rest is not.
 * - `alerts`: the alerts of every agent pod in one stream.
 *
 * @module
 */
import { checkWebhookFlags, parseFlags } from "./src/agent/config.ts";
import { stringify } from "yaml";
import { AGENT_USAGE, runAgent } from "./src/agent/mod.ts";
import { buildCrd } from "./src/api/mod.ts";
import { serveWebhooks } from "./src/webhook/mod.ts";
import { ALERTS_USAGE, runAlerts, runStatus, STATUS_USAGE } from "./src/cli/mod.ts";

const USAGE = `Usage: kivebpf <command> [options]

Commands:
  agent [options]
      Run the node agent: plant and arm traps, report accesses. Options:
${AGENT_USAGE.split("\n").slice(1).join("\n")}
  webhook --cert FILE --key FILE [--port 9443] [--host 0.0.0.0]
      Serve the KivePolicy conversion (/convert) and validating (/validate) webhooks.
  crd
      Print the KivePolicy CustomResourceDefinition as YAML.
  status [POLICY] [options]
      ${STATUS_USAGE.split("\n").slice(1).join("\n     ")}
  alerts [options]
      ${ALERTS_USAGE.split("\n").slice(1).join("\n     ")}
`;

/**
 * Runs the command line.
 *
 * @param args Arguments after the program name.
 * @returns The process exit code.
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case "agent":
      return await runAgent(rest);
    case "webhook": {
      const parsed = parseFlags(rest, {
        cert: { type: "string" },
        key: { type: "string" },
        port: { type: "string", default: "9443" },
        host: { type: "string", default: "0.0.0.0" },
      });
      const checked = parsed.ok ? checkWebhookFlags(parsed.values) : parsed;
      if (!checked.ok) {
        for (const problem of checked.problems) console.error(`webhook: ${problem}`);
        console.error(`\n${USAGE}`);
        return 2;
      }
      const values = checked.flags;
      let cert: string, key: string;
      try {
        [cert, key] = await Promise.all([
          Deno.readTextFile(values.cert),
          Deno.readTextFile(values.key),
        ]);
      } catch (error) {
        console.error(`webhook: cannot read --cert or --key: ${(error as Error).message}`);
        return 2;
      }
      const server = serveWebhooks({
        hostname: values.host,
        port: values.port,
        cert,
        key,
        onError: (error) => console.error("webhook request failed:", error),
      });
      console.error(`webhooks listening on https://${values.host}:${server.addr.port}`);
      await server.finished;
      return 0;
    }
    case "status":
      return await runStatus(rest);
    case "alerts":
      return await runAlerts(rest);
    case "crd":
      console.log(stringify(buildCrd(), { lineWidth: 0 }));
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`Unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
