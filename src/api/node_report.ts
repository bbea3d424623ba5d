/**
 * The `KiveNodeReport`: what one node's agent reports about one KivePolicy, as an object of its
 * own in the policy's namespace (owned by the policy, so deleting the policy deletes it). A
 * policy's own status keeps only totals and conditions: its size does not grow with the number
 * of nodes, and a change on one node is one write to one small object that no other agent
 * watches. `kubectl get kivenodereports -l kivebpf.san7o.github.io/policy=<name>` lists them.
 *
 * @module
 */
import { z } from "zod";
import { GROUP } from "./policy.ts";
import { TrapReport } from "./status_schema.ts";

/** Kind of the per-node report. */
export const NODE_REPORT_KIND = "KiveNodeReport";
/** Resource name of the per-node report. */
export const NODE_REPORT_PLURAL = "kivenodereports";
/** The report's only version. */
export const NODE_REPORT_VERSION = "v2alpha1";
/** Label: the uid of the policy a report is about. */
export const POLICY_UID_LABEL = `${GROUP}/policy-uid`;
/** Label: the policy's name, where it fits a label value (63 characters). */
export const POLICY_NAME_LABEL = `${GROUP}/policy`;
/** Label: the node, where its name fits a label value. */
export const NODE_LABEL = `${GROUP}/node`;

/** The fields of a report besides its metadata. */
export const NodeReportBody = z.object({
  policy: z.object({
    name: z.string(),
    uid: z.string(),
    generation: z.number().int().optional(),
  }),
  node: z.string(),
  kernelId: z.string().optional(),
  backend: z.string().optional().meta({ description: "Backend of the kernel's leader." }),
  armed: z.number().int().min(0).meta({ description: "(trap, container) pairs armed." }),
  notArmed: z.number().int().min(0).optional().meta({
    description: "(trap, container) pairs not armed, with reasons under traps[].problems.",
  }),
  decoysNotListed: z.number().int().min(0).optional().meta({
    description: "Decoys armed but not listed under traps[].decoys, past the report's bound.",
  }),
  traps: z.array(TrapReport).optional().meta({
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["index"],
  }),
});
/** A parsed report body. */
export type NodeReportBody = ReturnType<typeof NodeReportBody.parse>;

/** A whole report object. */
export interface KiveNodeReport extends NodeReportBody {
  apiVersion: `${typeof GROUP}/${typeof NODE_REPORT_VERSION}`;
  kind: typeof NODE_REPORT_KIND;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    [key: string]: unknown;
  };
}

const MAX_NAME = 253;

/**
 * The name of the report of one policy on one node: `<policy>.<node>.<tag>`, all DNS subdomains,
 * so the name is one too. Names and node names may both hold dots, so `<policy>.<node>` alone
 * is ambiguous (policy `web` on node `n1.example.com`, policy `web.n1` on node `example.com`):
 * the tag, 8 hex digits of a hash of the pair, keeps two pairs from sharing a report. Past 253
 * characters the name is cut and ends with a hash of the pair instead.
 *
 * @param policy The policy's name.
 * @param node The node's name.
 */
export function nodeReportName(policy: string, node: string): string {
  const pair = `${policy}\u0000${node}`;
  const whole = `${policy}.${node}.${shortTag(pair).slice(0, 8)}`;
  if (whole.length <= MAX_NAME) return whole;
  const hash = shortTag(pair);
  // Cut at a character that may end a label, then the hash (alphanumeric) ends the name.
  const head = whole.slice(0, MAX_NAME - hash.length - 1).replace(/[.-]+$/, "");
  return `${head}.${hash}`;
}

/**
 * 16 hex digits of the 64-bit FNV-1a of the UTF-8 bytes: a short, stable tag for names and
 * label values too long to use whole; not a security measure.
 */
export function shortTag(text: string): string {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, "0");
}

/**
 * The label value that stands for a name or uid: itself where it fits a label value, else a
 * hash of it (`h-` and 16 hex digits). Selectors use the same function.
 */
export function labelValueOf(text: string): string {
  return asLabelValue(text) ?? `h-${shortTag(text)}`;
}

/** A label value if `value` can be one (63 characters of [A-Za-z0-9._-], alnum at both ends). */
export function asLabelValue(value: string): string | undefined {
  return /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/.test(value) ? value : undefined;
}
