/**
 * `kivebpf status [policy]`: per policy, per node, what is armed and why the rest is not, read
 * from the policies' status and their KiveNodeReports (the same objects `kubectl get kp,knr`
 * shows, put together).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { GROUP, NODE_REPORT_PLURAL, NODE_REPORT_VERSION, PLURAL } from "../api/mod.ts";
import type { KiveNodeReport } from "../api/mod.ts";
import { loadKubeConfig } from "../kube/mod.ts";
import { ApiReader } from "./_api.ts";

/** Usage of the command. */
export const STATUS_USAGE = `Usage: kivebpf status [POLICY] [-n NAMESPACE | -A] [-o text|json]
  Per policy and node: traps armed, and why the others are not (from the KiveNodeReports).
  -n, --namespace NS   the policies of this namespace (default kivebpf-system)
  -A, --all-namespaces the policies of every namespace
  -o, --output F       text (default) or json
  --kubeconfig FILE    the kubeconfig (default: $KUBECONFIG or ~/.kube/config)`;

interface PolicyObject {
  metadata: { name: string; namespace: string; uid: string };
  status?: {
    armed?: number;
    notArmed?: number;
    nodeCount?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

/** One policy's status as the command reports it. */
export interface PolicyStatusView {
  policy: string;
  ready?: string;
  reason?: string;
  message?: string;
  armed: number;
  notArmed: number;
  nodes: {
    node: string;
    backend?: string;
    armed: number;
    notArmed: number;
    traps: {
      index: number;
      path: string;
      armed: number;
      problems: { pod: string; container?: string; reason: string; message?: string }[];
    }[];
  }[];
}

/**
 * Puts each policy's status and its reports together.
 *
 * @param policies The policies, as read.
 * @param reports Their KiveNodeReports (any of them; matched by policy uid).
 */
export function statusViews(
  policies: readonly PolicyObject[],
  reports: readonly KiveNodeReport[],
): PolicyStatusView[] {
  return policies.map((policy) => {
    const ready = policy.status?.conditions?.find((c) => c.type === "Ready");
    const nodes = reports
      .filter((r) => r.policy.uid === policy.metadata.uid)
      .sort((a, b) => a.node.localeCompare(b.node))
      .map((r) => ({
        node: r.node,
        backend: r.backend,
        armed: r.armed,
        notArmed: r.notArmed ?? 0,
        traps: (r.traps ?? []).map((t) => ({
          index: t.index,
          path: t.path,
          armed: t.armed,
          problems: (t.problems ?? []).map((p) => ({
            pod: `${p.namespace}/${p.pod}`,
            container: p.container,
            reason: p.reason,
            message: p.message,
          })),
        })),
      }));
    return {
      policy: `${policy.metadata.namespace}/${policy.metadata.name}`,
      ready: ready?.status,
      reason: ready?.reason,
      message: ready?.message,
      armed: policy.status?.armed ?? nodes.reduce((sum, n) => sum + n.armed, 0),
      notArmed: policy.status?.notArmed ?? nodes.reduce((sum, n) => sum + n.notArmed, 0),
      nodes,
    };
  });
}

/** The text form: one block per policy, one line per node and trap, one per problem. */
export function formatStatus(views: readonly PolicyStatusView[]): string {
  const lines: string[] = [];
  for (const view of views) {
    const ready = view.ready ? ` Ready=${view.ready}${view.reason ? ` (${view.reason})` : ""}` : "";
    lines.push(`${view.policy}: ${view.armed} armed, ${view.notArmed} not armed${ready}`);
    if (view.nodes.length === 0) lines.push("  no node reports matching containers");
    for (const node of view.nodes) {
      const backend = node.backend ? `, backend ${node.backend}` : "";
      lines.push(`  node ${node.node}: ${node.armed} armed, ${node.notArmed} not armed${backend}`);
      for (const trap of node.traps) {
        lines.push(`    trap ${trap.index} ${trap.path}: ${trap.armed} armed`);
        for (const problem of trap.problems) {
          const where = problem.container ? `${problem.pod} (${problem.container})` : problem.pod;
          const message = problem.message ? `: ${problem.message}` : "";
          lines.push(`      not armed in ${where}: ${problem.reason}${message}`);
        }
      }
    }
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Runs `kivebpf status`.
 *
 * @param args The arguments after `status`.
 * @returns The exit code: 0, 1 when a named policy does not exist, 2 for bad usage.
 */
export async function runStatus(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        namespace: { type: "string", short: "n", default: "kivebpf-system" },
        "all-namespaces": { type: "boolean", short: "A", default: false },
        output: { type: "string", short: "o", default: "text" },
        kubeconfig: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    console.error(`status: ${(error as Error).message}\n${STATUS_USAGE}`);
    return 2;
  }
  const flags = parsed.values;
  const positionals = parsed.positionals;
  if (flags.help) {
    console.log(STATUS_USAGE);
    return 0;
  }
  if (!["text", "json"].includes(flags.output) || positionals.length > 1) {
    const problem = positionals.length > 1 ? "give at most one policy" : "-o must be text or json";
    console.error(`status: ${problem}\n${STATUS_USAGE}`);
    return 2;
  }
  const api = new ApiReader(loadKubeConfig(flags.kubeconfig));
  const name = positionals[0];
  const scope = flags["all-namespaces"] ? "" : `/namespaces/${encodeURIComponent(flags.namespace)}`;
  let policies: PolicyObject[];
  if (name) {
    const path = `/apis/${GROUP}/v2alpha1${scope || "/namespaces/kivebpf-system"}/${PLURAL}/` +
      encodeURIComponent(name);
    try {
      policies = [await api.json<PolicyObject>(path)];
    } catch (error) {
      const missing = /HTTP 404/.test((error as Error).message);
      const where = flags["all-namespaces"] ? "kivebpf-system" : flags.namespace;
      console.error(
        missing
          ? `status: no KivePolicy ${where}/${name} (kubectl get kp -A lists them)`
          : `status: ${(error as Error).message}`,
      );
      return 1;
    }
  } else {
    policies =
      (await api.json<{ items: PolicyObject[] }>(`/apis/${GROUP}/v2alpha1${scope}/${PLURAL}`))
        .items;
  }
  const reports = (await api.json<{ items: KiveNodeReport[] }>(
    `/apis/${GROUP}/${NODE_REPORT_VERSION}${scope}/${NODE_REPORT_PLURAL}`,
  )).items;
  const views = statusViews(policies, reports);
  if (views.length === 0 && flags.output === "text") {
    console.log(
      `no KivePolicies ${flags["all-namespaces"] ? "in any namespace" : `in ${flags.namespace}`}`,
    );
    return 0;
  }
  console.log(
    flags.output === "json" ? JSON.stringify(views, null, 2) : formatStatus(views).trimEnd(),
  );
  return 0;
}
