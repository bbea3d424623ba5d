/**
 * The `KivePolicy` API, defined once: these zod schemas are the TypeScript types, the runtime
 * validation of the admission webhook and, through {@linkcode buildCrd}, the CRD's OpenAPI
 * schema with its CEL rules. Each rule the API server can check itself is written twice side by
 * side, as a zod check and as the CEL rule in the same field's metadata, with the same message.
 *
 * @module
 */
import { z } from "zod";
import {
  DECOY_KIND_NAMES,
  DECOY_OPTION_PATTERN,
  type DecoyKind,
  decoyOptionNames,
} from "./decoy_kinds.ts";
import {
  expressionValuesProblem,
  LABEL_OPERATORS,
  labelKeyProblem,
  labelValueProblem,
} from "./label_selector.ts";
import { isChmodMode } from "./mode.ts";
import { compileContainerName, compileIpSelector } from "./selectors.ts";
import type { PolicyStatus } from "./status_schema.ts";

export { PolicyStatus } from "./status_schema.ts";

/** The API group of every kivebpf resource. */
export const GROUP = "kivebpf.san7o.github.io";
/** The kind, plural and short name of the policy resource. */
export const KIND = "KivePolicy";
/** The resource name in URLs. */
export const PLURAL = "kivepolicies";
/** The finalizer that keeps a policy until every node has disarmed its traps. */
export const FINALIZER = `${GROUP}/finalizer`;
/** Versions served, oldest first; the last one is the storage version. */
export const VERSIONS = ["v1", "v2alpha1"] as const;
/** A served API version. */
export type ApiVersion = typeof VERSIONS[number];
/** Alert formats a policy may ask for; empty means v1. */
export const ALERT_VERSIONS = ["v1", "v2alpha1"] as const;
/** Longest trap path accepted, in bytes, as Linux's PATH_MAX. */
export const MAX_PATH_BYTES = 4096;

interface CelRule {
  rule: string;
  message: string;
  /** The field the API server's error names, relative to the object the rule is on. */
  fieldPath?: string;
}

/** Attaches CEL rules that the generated CRD carries for the API server to enforce. */
function cel(...rules: CelRule[]): { "x-kubernetes-validations": CelRule[] } {
  return { "x-kubernetes-validations": rules };
}

const PATH_ABSOLUTE = 'must be an absolute path starting with "/"';
const PATH_NORMALIZED = 'must be normalized: no "." or ".." segments, no "//" and no trailing "/"';
const PATH_NOT_ROOT = 'must name a file, not "/"';

/**
 * Explains what is wrong with a trap path, or returns `undefined` for a good one.
 *
 * @param path The path as written in the policy.
 * @returns A message naming the problem and the fix.
 */
export function pathProblem(path: string): string | undefined {
  if (path.includes("\0")) return "must not contain a NUL byte";
  const bytes = new TextEncoder().encode(path).length;
  if (bytes > MAX_PATH_BYTES) return `must be at most ${MAX_PATH_BYTES} bytes, got ${bytes}`;
  if (!path.startsWith("/")) return `${PATH_ABSOLUTE}, got "${path}"`;
  if (path === "/") return PATH_NOT_ROOT;
  const segments = path.slice(1).split("/");
  if (segments.some((segment) => segment === "" || segment === "." || segment === "..")) {
    return `${PATH_NORMALIZED}, got "${path}"; write "${normalizePath(path)}"`;
  }
  return undefined;
}

/** Resolves `.`, `..`, `//` and a trailing `/` lexically, as the error message's suggestion. */
function normalizePath(path: string): string {
  const out: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  return `/${out.join("/")}`;
}

const trapPath = z.string().max(MAX_PATH_BYTES).superRefine((path, ctx) => {
  const problem = pathProblem(path);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
}).meta({
  description: "Absolute, normalized path of the trap file inside each matching container.",
  ...cel(
    { rule: "self.startsWith('/')", message: PATH_ABSOLUTE },
    { rule: "self != '/'", message: PATH_NOT_ROOT },
    {
      rule: "!self.contains('//') && !self.endsWith('/') && !self.matches('(^|/)[.][.]?(/|$)')",
      message: PATH_NORMALIZED,
    },
  ),
});

const MODE_MESSAGE = "must be written like chmod: octal digits 0-7 up to 7777 (444 is r--r--r--)";

const trapMode = z.number().int().superRefine((mode, ctx) => {
  if (!isChmodMode(mode)) ctx.addIssue({ code: "custom", message: `${MODE_MESSAGE}, got ${mode}` });
}).meta({
  description: "Permissions of a file the agent creates, written like chmod: 444 is r--r--r--. " +
    "Digits are octal; 8 and 9 and values above 7777 are rejected. An existing file keeps its mode.",
  // Digit by digit in arithmetic: string(self).matches() is priced far above the CRD budget.
  ...cel({
    rule: "self >= 0 && self <= 7777 && self % 10 <= 7 && self / 10 % 10 <= 7 && " +
      "self / 100 % 10 <= 7 && self / 1000 % 10 <= 7",
    message: MODE_MESSAGE,
  }),
});

const CALLBACK_MESSAGE = "must be an absolute http:// or https:// URL";

const callbackUrl = z.string().max(2048).superRefine((text, ctx) => {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") {
    ctx.addIssue({ code: "custom", message: `${CALLBACK_MESSAGE}, got "${text}"` });
  }
}).meta({
  description: "If set, alerts of this trap are POSTed as JSON to this URL instead of stdout.",
  ...cel({
    rule:
      "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",
    message: CALLBACK_MESSAGE,
  }),
});

/** Longest key of a string map: a label key (a 253-byte prefix, "/", a 63-byte name). */
export const MAX_MAP_KEY_LENGTH = 317;
/** Longest value of a string map: bounds what every alert and registration carries. */
export const MAX_MAP_VALUE_LENGTH = 4096;
const MAP_KEYS = `keys must not be empty and at most ${MAX_MAP_KEY_LENGTH} characters long`;

const stringMap = (description: string) =>
  z.record(z.string(), z.string().max(MAX_MAP_VALUE_LENGTH)).superRefine((map, ctx) => {
    for (const key of Object.keys(map)) {
      if (key === "" || key.length > MAX_MAP_KEY_LENGTH) {
        const got = key === "" ? "an empty key" : `a key of ${key.length} characters`;
        ctx.addIssue({ code: "custom", message: `${MAP_KEYS}, got ${got}` });
      }
    }
  }).meta({
    description,
    maxProperties: 64,
    ...cel({
      rule: `self.all(k, k != '' && size(k) <= ${MAX_MAP_KEY_LENGTH})`,
      message: MAP_KEYS,
    }),
  });

const selectorString = (description: string, maxLength = 253) =>
  z.string().min(1).max(maxLength).meta({ description });

const containerNameSelector = selectorString(
  "Container name: exact, `regex:<ECMAScript pattern>` or `glob:<pattern>`, " +
    "always matched against the whole name.",
  1024,
).superRefine((selector, ctx) => {
  try {
    compileContainerName(selector);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
  }
});

const IP_MESSAGE = "must be an IP address or a CIDR block (10.0.0.7, fd00::7, 10.0.0.0/24)";

const ipSelector = z.string().min(1).max(64).superRefine((selector, ctx) => {
  try {
    compileIpSelector(selector);
  } catch {
    ctx.addIssue({ code: "custom", message: `${IP_MESSAGE}, got "${selector}"` });
  }
}).meta({
  description: "A pod IP, or a CIDR block containing one of the pod's IPs.",
  ...cel({ rule: "isIP(self) || isCIDR(self)", message: IP_MESSAGE }),
});

const OPERATOR_VALUES_MESSAGE = "values must not be empty for In and NotIn, and must be empty " +
  "for Exists and DoesNotExist";

const labelExpression = z.object({
  key: z.string().max(317).superRefine((key, ctx) => {
    const problem = labelKeyProblem(key);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  }).meta({ description: "The label key the expression tests." }),
  operator: z.enum(LABEL_OPERATORS).meta({
    description: "In, NotIn, Exists or DoesNotExist, as in Kubernetes label selectors.",
  }),
  values: z.array(
    z.string().max(63).superRefine((value, ctx) => {
      const problem = labelValueProblem(value);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    }),
  ).max(64).optional().meta({ description: "Values for In and NotIn; none for the others." }),
}).superRefine((expression, ctx) => {
  const problem = expressionValuesProblem(expression);
  if (problem) ctx.addIssue({ code: "custom", path: ["values"], message: problem });
}).meta({
  description: "A label selector requirement, as Kubernetes has them.",
  ...cel({
    rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : " +
      "(!has(self.values) || size(self.values) == 0)",
    message: OPERATOR_VALUES_MESSAGE,
    fieldPath: ".values",
  }),
});

const SELECTOR_KEYS = [
  "pod",
  "namespace",
  "matchLabels",
  "matchExpressions",
  "containerName",
  "ip",
] as const;
const GROUP_MESSAGE = `must set at least one of ${SELECTOR_KEYS.join(", ")}`;

/** One `matchAny` group: a container matches when it satisfies every selector in it. */
export const MatchGroup = z.object({
  pod: selectorString("Pod name.").optional(),
  namespace: selectorString("Pod namespace.", 63).optional(),
  matchLabels: stringMap("Labels the pod must all carry.").optional(),
  // 16, not more: with 256 traps of 64 groups, the CEL rule on each expression must stay
  // inside the API server's cost budget for the whole object.
  matchExpressions: z.array(labelExpression).max(16).optional().meta({
    description: "Label expressions (In, NotIn, Exists, DoesNotExist) the pod must all satisfy.",
  }),
  containerName: containerNameSelector.optional(),
  ip: ipSelector.optional(),
}).superRefine((group, ctx) => {
  if (!SELECTOR_KEYS.some((key) => group[key] !== undefined)) {
    ctx.addIssue({ code: "custom", message: GROUP_MESSAGE });
  }
}).meta({
  description: "Selectors that must all match (AND).",
  ...cel({
    rule: SELECTOR_KEYS.map((key) => `has(self.${key})`).join(" || "),
    message: GROUP_MESSAGE,
  }),
});
// Parsed types are spelled `ReturnType<typeof Schema.parse>`, not `z.infer<typeof Schema>`: the
// same type, without naming zod's `output` helper, which `deno doc --lint` reports as a private
// type in our public API.
/** A parsed `matchAny` group. */
export type MatchGroup = ReturnType<typeof MatchGroup.parse>;

/**
 * A list that must not be empty, checked by zod and by CEL with one message (a CEL rule rather
 * than `minItems`, whose API server message would not say what the list is for).
 */
function nonEmptyList<T extends z.ZodType>(
  item: T,
  maxItems: number,
  message: string,
  description: string,
) {
  return z.array(item).max(maxItems).superRefine((list, ctx) => {
    if (list.length === 0) ctx.addIssue({ code: "custom", message });
  }).meta({ description, ...cel({ rule: "size(self) > 0", message }) });
}

const matchAny = nonEmptyList(
  MatchGroup,
  64,
  "must list at least one selector group (groups are ORed)",
  "Groups of selectors; a container matches when any group matches (OR).",
);

/** Fields every version of a trap has. */
const trapV1Shape = {
  path: trapPath,
  create: z.boolean().default(false).meta({
    description: "Create the file (and missing parent directories) when it does not exist. " +
      "An existing file is never truncated or rewritten.",
  }),
  mode: trapMode.default(444),
  callback: callbackUrl.optional(),
  metadata: stringMap("Free-form pairs copied into every alert as `custom-metadata`.").optional(),
  matchAny,
};

/** The shapes a trap's callback body can take (src/delivery/alert_formats.ts). */
export const CALLBACK_FORMATS = ["kive", "falco", "cloudevents"] as const;

/** The action a trap takes on access. `block` is enforced on the `lsm` backend only. */
export const TRAP_ACTIONS = ["alert", "block"] as const;

/** Label a Secret must carry for `contentFrom.secretKeyRef` to use it (in the agent's namespace). */
export const DECOY_SECRET_LABEL = `${GROUP}/decoy-content`;

const OPTION_VALUE_MESSAGE =
  "must be 1 to 253 characters of letters, digits and . _ : / @ + - (no spaces, quotes or newlines)";
const ONE_SOURCE_MESSAGE = "must set exactly one of generate, secretKeyRef";
const OPTIONS_NEED_GENERATE = "options are the options of a generated kind: set generate too";
const KNOWN_OPTIONS_MESSAGE = "options must be ones the generated kind takes (docs/DECOYS.md)";

const decoyOptions = z.record(
  z.string(),
  z.string().superRefine((value, ctx) => {
    if (!new RegExp(DECOY_OPTION_PATTERN).test(value)) {
      ctx.addIssue({
        code: "custom",
        message: `${OPTION_VALUE_MESSAGE}, got ${JSON.stringify(value)}`,
      });
    }
  }).meta({ maxLength: 253, pattern: DECOY_OPTION_PATTERN }),
).meta({ description: "Options of the generated kind (docs/DECOYS.md).", maxProperties: 8 });

/** The CEL rule that each option name is one the kind takes. */
function knownOptionsRule(): string {
  const byKind = DECOY_KIND_NAMES.map((kind) =>
    `(self.generate == '${kind}' && k in [${
      decoyOptionNames(kind).map((o) => `'${o}'`).join(", ")
    }])`
  );
  return `!has(self.options) || !has(self.generate) || self.options.all(k, ${byKind.join(" || ")})`;
}

const contentFrom = z.object({
  generate: z.enum(DECOY_KIND_NAMES as [DecoyKind, ...DecoyKind[]]).optional().meta({
    description: "Generate decoy credentials of this kind, unique per container, carrying a " +
      "decoy id that alerts and status report.",
  }),
  options: decoyOptions.optional(),
  secretKeyRef: z.object({
    name: selectorString(
      `Secret in the agent's namespace (kivebpf-system) labelled ${DECOY_SECRET_LABEL}=true.`,
    ),
    key: selectorString("The key of the Secret whose value is the content."),
  }).optional(),
}).superRefine((source, ctx) => {
  if ((source.generate === undefined) === (source.secretKeyRef === undefined)) {
    ctx.addIssue({ code: "custom", message: ONE_SOURCE_MESSAGE });
  }
  if (source.options && source.generate === undefined) {
    ctx.addIssue({ code: "custom", path: ["options"], message: OPTIONS_NEED_GENERATE });
  }
  if (source.options && source.generate) {
    const known = decoyOptionNames(source.generate);
    for (const name of Object.keys(source.options)) {
      if (!known.includes(name)) {
        ctx.addIssue({
          code: "custom",
          path: ["options"],
          message: `"${name}" is not an option of ${source.generate}; it takes ${known.join(", ")}`,
        });
      }
    }
  }
}).meta({
  description: "Where the content of a created file comes from, instead of content: " +
    "generated decoy credentials or a labelled Secret. The agent creates the file when it is " +
    "missing (create is implied); existing files are untouched.",
  ...cel(
    { rule: "has(self.generate) != has(self.secretKeyRef)", message: ONE_SOURCE_MESSAGE },
    {
      rule: "!has(self.options) || has(self.generate)",
      message: OPTIONS_NEED_GENERATE,
      fieldPath: ".options",
    },
    { rule: knownOptionsRule(), message: KNOWN_OPTIONS_MESSAGE, fieldPath: ".options" },
  ),
});

/** Fields a trap has in v2alpha1 only; v1 carries them in an annotation so nothing is lost. */
const trapV2OnlyShape = {
  action: z.enum(TRAP_ACTIONS).default("alert").meta({
    description: "alert: report the access. block: also deny it with EPERM (lsm backend only).",
  }),
  content: z.string().max(65536).optional().meta({
    description: "Content written into a file the agent creates. Existing files are untouched.",
  }),
  contentFrom: contentFrom.optional(),
  owner: z.object({
    uid: z.number().int().min(0).max(4294967294),
    gid: z.number().int().min(0).max(4294967294),
  }).optional().meta({
    description: "Owner of a file the agent creates, as numeric ids inside the container.",
  }),
  callbackHeadersFrom: z.object({
    secretName: selectorString(
      "Secret in the agent's namespace (kivebpf-system) labelled " +
        "kivebpf.san7o.github.io/callback-headers=true; each key is a header name.",
    ),
  }).optional().meta({ description: "HTTP headers for the callback, read from a Secret." }),
  callbackCABundle: z.string().max(65536).optional().meta({
    description: "PEM certificates trusted for an https callback, instead of the system's.",
  }),
  callbackFormat: z.enum(CALLBACK_FORMATS).optional().meta({
    description: 'Shape of the callback\'s body: kive ({"KiveAlert": ...}), falco (what ' +
      "falcosidekick takes) or cloudevents (CloudEvents 1.0, structured). Default: the agent's " +
      "--alert-format.",
  }),
};

// Typed as the keys a v2alpha1 trap has and a v1 trap lacks: exactly the keys of
// trapV2OnlyShape, without naming that private object in the public type.
/** The names of the trap fields that exist only in v2alpha1. */
export const V2_ONLY_TRAP_FIELDS: Exclude<keyof TrapV2, keyof TrapV1>[] = Object.keys(
  trapV2OnlyShape,
) as (keyof typeof trapV2OnlyShape)[];

/** A trap as written in `v1`. */
export const TrapV1 = z.object(trapV1Shape);
/** A parsed v1 trap. */
export type TrapV1 = ReturnType<typeof TrapV1.parse>;
const CONTENT_TWICE = "set content or contentFrom, not both";
const FORMAT_NEEDS_CALLBACK =
  "callbackFormat is the shape of the callback's body: set callback too";

/** A trap as written in `v2alpha1`: every v1 field plus the v2alpha1 ones. */
export const TrapV2 = z.object({ ...trapV1Shape, ...trapV2OnlyShape }).superRefine((trap, ctx) => {
  if (trap.content !== undefined && trap.contentFrom !== undefined) {
    ctx.addIssue({ code: "custom", path: ["contentFrom"], message: CONTENT_TWICE });
  }
  if (trap.callbackFormat !== undefined && trap.callback === undefined) {
    ctx.addIssue({ code: "custom", path: ["callbackFormat"], message: FORMAT_NEEDS_CALLBACK });
  }
}).meta({
  ...cel(
    {
      rule: "!(has(self.content) && has(self.contentFrom))",
      message: CONTENT_TWICE,
      fieldPath: ".contentFrom",
    },
    {
      rule: "!has(self.callbackFormat) || has(self.callback)",
      message: FORMAT_NEEDS_CALLBACK,
      fieldPath: ".callbackFormat",
    },
  ),
});
/** A parsed v2alpha1 trap. */
export type TrapV2 = ReturnType<typeof TrapV2.parse>;

const ALERT_VERSION_MESSAGE = `must be one of ${ALERT_VERSIONS.join(", ")} (empty means v1)`;

const alertVersion = z.string().default("v1").superRefine((version, ctx) => {
  if (version !== "" && !(ALERT_VERSIONS as readonly string[]).includes(version)) {
    ctx.addIssue({ code: "custom", message: `${ALERT_VERSION_MESSAGE}, got "${version}"` });
  }
}).meta({
  description: "Format of the alerts: v1 (the seed's KiveAlert) or v2alpha1 (more context).",
  ...cel({ rule: "self in ['', 'v1', 'v2alpha1']", message: ALERT_VERSION_MESSAGE }),
});

/** Reports traps that repeat an earlier trap's path and selectors. */
function rejectDuplicateTraps(traps: TrapV1[], ctx: z.RefinementCtx): void {
  const seen = new Map<string, number>();
  traps.forEach((trap, index) => {
    const key = canonicalJson([trap.path, trap.matchAny]);
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, index);
    } else {
      ctx.addIssue({
        code: "custom",
        path: [index],
        message: `repeats spec.traps[${first}] (same path "${trap.path}" and the same matchAny); ` +
          "merge the two traps or change one",
      });
    }
  });
}

/** JSON with object keys sorted, so that equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, inner) =>
      inner && typeof inner === "object" && !Array.isArray(inner)
        ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
        : inner,
  );
}

const trapsOf = <T extends z.ZodType<TrapV1>>(trap: T) =>
  nonEmptyList(trap, 256, "must list at least one trap", "Trap files and where to plant them.")
    .superRefine(rejectDuplicateTraps);

/** The `spec` of a v1 policy. */
export const PolicySpecV1 = z.object({ alertVersion, traps: trapsOf(TrapV1) });
/** A parsed v1 spec. */
export type PolicySpecV1 = ReturnType<typeof PolicySpecV1.parse>;
/** The `spec` of a v2alpha1 policy. */
export const PolicySpecV2 = z.object({ alertVersion, traps: trapsOf(TrapV2) });
/** A parsed v2alpha1 spec. */
export type PolicySpecV2 = ReturnType<typeof PolicySpecV2.parse>;

/** Kubernetes object metadata, as far as kivebpf reads it. */
export interface ObjectMeta {
  /** The object's name, unique in its namespace. */
  name?: string;
  /** The namespace the object lives in. */
  namespace?: string;
  /** The id of this incarnation of the object; one deleted and re-created gets a new one. */
  uid?: string;
  /** Bumped by the API server on every change to `spec`; status reports it back as observed. */
  generation?: number;
  /** The version of the stored object, for conditional writes. */
  resourceVersion?: string;
  /** Labels, which selectors match. */
  labels?: Record<string, string>;
  /** Annotations; a v1 object keeps its v2alpha1-only trap fields in one. */
  annotations?: Record<string, string>;
  /** Finalizers that keep a deleted object until each is removed. */
  finalizers?: string[];
  /** Set once deletion was requested; the object stays while finalizers remain. */
  deletionTimestamp?: string;
  /** Any other metadata, kept as read so that writes pass it through. */
  [key: string]: unknown;
}

/** A whole v1 policy object. */
export interface KivePolicyV1 {
  /** The group and version, `kivebpf.san7o.github.io/v1`. */
  apiVersion: `${typeof GROUP}/v1`;
  /** Always {@linkcode KIND}. */
  kind: typeof KIND;
  /** The object's metadata. */
  metadata: ObjectMeta;
  /** The traps and the alert format, as written in v1. */
  spec: PolicySpecV1;
  /** What the agents report; absent until one has. */
  status?: PolicyStatus;
}

/** A whole v2alpha1 policy object, the form the agent works with. */
export interface KivePolicyV2 {
  /** The group and version, `kivebpf.san7o.github.io/v2alpha1`. */
  apiVersion: `${typeof GROUP}/v2alpha1`;
  /** Always {@linkcode KIND}. */
  kind: typeof KIND;
  /** The object's metadata. */
  metadata: ObjectMeta;
  /** The traps and the alert format, as written in v2alpha1. */
  spec: PolicySpecV2;
  /** What the agents report; absent until one has. */
  status?: PolicyStatus;
}

/** The spec schema of each served version. */
export const SPEC_SCHEMAS = { v1: PolicySpecV1, v2alpha1: PolicySpecV2 } as const;
