/**
 * Generates the `KivePolicy` CustomResourceDefinition from the zod schemas.
 *
 * zod's JSON Schema output is close to a CRD schema but not one: Kubernetes wants OpenAPI 3.0
 * without `$schema`, forbids `additionalProperties: false` next to `properties` (a structural
 * schema prunes unknown fields instead), and JavaScript's safe-integer bounds are noise there.
 * This module converts the output and adds the CRD around it.
 *
 * @module
 */
import { z } from "zod";
import {
  GROUP,
  KIND,
  PLURAL,
  PolicySpecV1,
  PolicySpecV2,
  PolicyStatus,
  VERSIONS,
} from "./policy.ts";
import type { JsonObject } from "./convert.ts";
import {
  NODE_REPORT_KIND,
  NODE_REPORT_PLURAL,
  NODE_REPORT_VERSION,
  NodeReportBody,
} from "./node_report.ts";

/** Where the API server reaches the conversion webhook inside the cluster. */
export interface WebhookService {
  /** The Service's namespace. */
  namespace: string;
  /** The Service's name. */
  name: string;
  /** The URL path the webhook answers on, such as `/convert`. */
  path: string;
  /** The Service port. */
  port: number;
}

/** The webhook Service of the install manifest. */
export const DEFAULT_CONVERSION_SERVICE: WebhookService = {
  namespace: "kivebpf-system",
  name: "kivebpf-webhook",
  path: "/convert",
  port: 443,
};

/**
 * Converts zod's JSON Schema into a structural OpenAPI v3 schema a CRD accepts.
 *
 * @param schema The zod schema.
 * @returns A plain JSON object for `openAPIV3Schema` properties.
 */
export function toCrdSchema(schema: z.ZodType): JsonObject {
  const json = z.toJSONSchema(schema, { target: "openapi-3.0", io: "input" }) as JsonObject;
  return clean(json) as JsonObject;
}

/**
 * Drops what a structural schema may not hold. `fieldNames` marks a `properties` object, whose
 * keys are the API's field names, never keywords: a field called `id` must stay.
 */
function clean(node: unknown, fieldNames = false): unknown {
  if (Array.isArray(node)) return node.map((item) => clean(item));
  if (typeof node !== "object" || node === null) return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (fieldNames) {
      out[key] = clean(value);
      continue;
    }
    if (key === "$schema" || key === "id") continue;
    if (key === "additionalProperties" && value === false) continue;
    if (
      (key === "minimum" || key === "maximum") &&
      Math.abs(value as number) === Number.MAX_SAFE_INTEGER
    ) {
      continue;
    }
    out[key] = key === "const" ? undefined : clean(value, key === "properties");
    if (key === "const") out.enum = [value];
  }
  for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key];
  return out;
}

const printerColumns = [
  { name: "Alerts", type: "string", jsonPath: ".spec.alertVersion", description: "Alert format" },
  {
    name: "Ready",
    type: "string",
    jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  },
  {
    name: "Armed",
    type: "integer",
    jsonPath: ".status.armed",
    description: "(trap, container) pairs armed, all nodes",
  },
  {
    name: "Nodes",
    type: "integer",
    jsonPath: ".status.nodeCount",
    description: "Nodes reporting (one KiveNodeReport each)",
  },
  {
    name: "Reason",
    type: "string",
    jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
    priority: 1,
  },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];

function versionSchema(spec: z.ZodType): JsonObject {
  return {
    type: "object",
    description: "KivePolicy plants trap files in selected pods and reports every access.",
    properties: {
      apiVersion: { type: "string" },
      kind: { type: "string" },
      metadata: { type: "object" },
      spec: toCrdSchema(spec),
      status: toCrdSchema(PolicyStatus),
    },
    required: ["spec"],
  };
}

/** Options of {@linkcode buildCrd}. */
export interface BuildCrdOptions {
  /** Where the conversion webhook runs; defaults to the install manifest's Service. */
  service?: WebhookService;
  /** A URL instead of a Service, for API servers outside a cluster (tests). */
  url?: string;
  /** Base64 PEM of the CA that signed the webhook's certificate; injected at run time if absent. */
  caBundle?: string;
}

/**
 * Builds the `kivepolicies.kivebpf.san7o.github.io` CRD.
 *
 * @param options Where the conversion webhook is.
 * @returns The CRD as a plain object, ready for YAML or the API.
 */
export function buildCrd(options: BuildCrdOptions = {}): JsonObject {
  const clientConfig: JsonObject = options.url
    ? { url: options.url }
    : { service: { ...(options.service ?? DEFAULT_CONVERSION_SERVICE) } };
  if (options.caBundle) clientConfig.caBundle = options.caBundle;
  const storage = VERSIONS[VERSIONS.length - 1];
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${PLURAL}.${GROUP}`,
      labels: { "app.kubernetes.io/name": "kivebpf" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: KIND.toLowerCase(),
        shortNames: ["kp"],
        categories: ["kivebpf"],
      },
      scope: "Namespaced",
      versions: VERSIONS.map((name) => ({
        name,
        served: true,
        storage: name === storage,
        schema: { openAPIV3Schema: versionSchema(name === "v1" ? PolicySpecV1 : PolicySpecV2) },
        subresources: { status: {} },
        additionalPrinterColumns: printerColumns,
      })),
      conversion: {
        strategy: "Webhook",
        webhook: { conversionReviewVersions: ["v1"], clientConfig },
      },
    },
  };
}

/**
 * Builds the `kivenodereports.kivebpf.san7o.github.io` CRD: one object per (policy, node), the
 * per-node detail a policy's status does not carry.
 *
 * @returns The CRD as a plain object.
 */
export function buildNodeReportCrd(): JsonObject {
  const body = toCrdSchema(NodeReportBody) as { properties: JsonObject; required?: string[] };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${NODE_REPORT_PLURAL}.${GROUP}`,
      labels: { "app.kubernetes.io/name": "kivebpf" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: NODE_REPORT_KIND,
        listKind: `${NODE_REPORT_KIND}List`,
        plural: NODE_REPORT_PLURAL,
        singular: NODE_REPORT_KIND.toLowerCase(),
        shortNames: ["knr"],
        categories: ["kivebpf"],
      },
      scope: "Namespaced",
      versions: [{
        name: NODE_REPORT_VERSION,
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            description:
              "What one node's agent reports about one KivePolicy (written by the agent).",
            properties: {
              apiVersion: { type: "string" },
              kind: { type: "string" },
              metadata: { type: "object" },
              ...body.properties,
            },
            required: body.required ?? [],
          },
        },
        additionalPrinterColumns: [
          { name: "Policy", type: "string", jsonPath: ".policy.name" },
          { name: "Node", type: "string", jsonPath: ".node" },
          { name: "Armed", type: "integer", jsonPath: ".armed" },
          { name: "Not armed", type: "integer", jsonPath: ".notArmed" },
          { name: "Backend", type: "string", jsonPath: ".backend", priority: 1 },
          { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
        ],
      }],
    },
  };
}
