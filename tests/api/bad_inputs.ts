/**
 * The table of bad policies and the error each gets, shared by the unit tests (zod, as the
 * webhook runs it) and the API server tests (CEL rules, schema and webhook together).
 *
 * @module
 */

const MAP_KEYS = "keys must not be empty and at most 317 characters long";

/** One bad input. */
export interface BadInput {
  name: string;
  apiVersion: "v1" | "v2alpha1";
  spec: Record<string, unknown>;
  /** The field named in the error. */
  field: string;
  /** Text of the error from the webhook's zod validation, as `field: message`. */
  message: string;
  /** Text the API server's answer contains, where its own schema check speaks first. */
  apiMessage?: string;
}

/** A valid trap to derive bad ones from. */
export function goodTrap(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    path: "/secret.txt",
    create: true,
    mode: 444,
    matchAny: [{ pod: "nginx-pod", namespace: "default" }],
    ...extra,
  };
}

function oneTrap(extra: Record<string, unknown>): Record<string, unknown> {
  return { alertVersion: "v1", traps: [goodTrap(extra)] };
}

const NORMALIZED = 'must be normalized: no "." or ".." segments, no "//" and no trailing "/"';

/** Every bad input with its expected error. */
export const BAD_INPUTS: BadInput[] = [
  {
    name: "empty traps",
    apiVersion: "v1",
    spec: { traps: [] },
    field: "spec.traps",
    message: "must list at least one trap",
  },
  {
    name: "missing traps",
    apiVersion: "v1",
    spec: { alertVersion: "v1" },
    field: "spec.traps",
    message: "must be a list",
    apiMessage: "Required value",
  },
  {
    name: "relative path",
    apiVersion: "v1",
    spec: oneTrap({ path: "secret.txt" }),
    field: "spec.traps[0].path",
    message: 'must be an absolute path starting with "/", got "secret.txt"',
    apiMessage: 'must be an absolute path starting with "/"',
  },
  {
    name: "path with ..",
    apiVersion: "v1",
    spec: oneTrap({ path: "/etc/../secret.txt" }),
    field: "spec.traps[0].path",
    message: `${NORMALIZED}, got "/etc/../secret.txt"; write "/secret.txt"`,
    apiMessage: NORMALIZED,
  },
  {
    name: "path with .",
    apiVersion: "v1",
    spec: oneTrap({ path: "/etc/./secret.txt" }),
    field: "spec.traps[0].path",
    message: `${NORMALIZED}, got "/etc/./secret.txt"; write "/etc/secret.txt"`,
    apiMessage: NORMALIZED,
  },
  {
    name: "path with //",
    apiVersion: "v1",
    spec: oneTrap({ path: "/etc//secret.txt" }),
    field: "spec.traps[0].path",
    message: `${NORMALIZED}, got "/etc//secret.txt"; write "/etc/secret.txt"`,
    apiMessage: NORMALIZED,
  },
  {
    name: "path with trailing /",
    apiVersion: "v1",
    spec: oneTrap({ path: "/etc/secret/" }),
    field: "spec.traps[0].path",
    message: `${NORMALIZED}, got "/etc/secret/"; write "/etc/secret"`,
    apiMessage: NORMALIZED,
  },
  {
    name: "path /",
    apiVersion: "v1",
    spec: oneTrap({ path: "/" }),
    field: "spec.traps[0].path",
    message: 'must name a file, not "/"',
  },
  {
    name: "path with NUL",
    apiVersion: "v1",
    spec: oneTrap({ path: "/secret\u0000.txt" }),
    field: "spec.traps[0].path",
    message: "must not contain a NUL byte",
  },
  {
    name: "path over 4096 characters",
    apiVersion: "v1",
    spec: oneTrap({ path: "/" + "a".repeat(4096) }),
    field: "spec.traps[0].path",
    message: "must be at most 4096 characters",
    apiMessage: "Too long",
  },
  {
    name: "path over 4096 bytes in fewer characters",
    apiVersion: "v1",
    spec: oneTrap({ path: "/" + "é".repeat(2100) }),
    field: "spec.traps[0].path",
    message: "must be at most 4096 bytes, got 4201",
  },
  {
    name: "mode with digit 8",
    apiVersion: "v1",
    spec: oneTrap({ mode: 448 }),
    field: "spec.traps[0].mode",
    message: "must be written like chmod: octal digits 0-7 up to 7777 (444 is r--r--r--), got 448",
    apiMessage: "must be written like chmod: octal digits 0-7 up to 7777",
  },
  {
    name: "mode above 7777",
    apiVersion: "v1",
    spec: oneTrap({ mode: 10000 }),
    field: "spec.traps[0].mode",
    message:
      "must be written like chmod: octal digits 0-7 up to 7777 (444 is r--r--r--), got 10000",
    apiMessage: "must be written like chmod: octal digits 0-7 up to 7777",
  },
  {
    name: "negative mode",
    apiVersion: "v1",
    spec: oneTrap({ mode: -1 }),
    field: "spec.traps[0].mode",
    message: "must be written like chmod: octal digits 0-7 up to 7777 (444 is r--r--r--), got -1",
    apiMessage: "must be written like chmod: octal digits 0-7 up to 7777",
  },
  {
    name: "mode as a string",
    apiVersion: "v1",
    spec: oneTrap({ mode: "0444" }),
    field: "spec.traps[0].mode",
    message: "must be an integer",
    apiMessage: "must be of type integer",
  },
  {
    name: "create not a boolean",
    apiVersion: "v1",
    spec: oneTrap({ create: "yes" }),
    field: "spec.traps[0].create",
    message: "must be true or false",
    apiMessage: "must be of type boolean",
  },
  {
    name: "empty matchAny",
    apiVersion: "v1",
    spec: oneTrap({ matchAny: [] }),
    field: "spec.traps[0].matchAny",
    message: "must list at least one selector group (groups are ORed)",
  },
  {
    name: "selector group without selectors",
    apiVersion: "v1",
    spec: oneTrap({ matchAny: [{ pod: "nginx-pod" }, {}] }),
    field: "spec.traps[0].matchAny[1]",
    message:
      "must set at least one of pod, namespace, matchLabels, matchExpressions, containerName, ip",
  },
  {
    name: "empty pod name",
    apiVersion: "v1",
    spec: oneTrap({ matchAny: [{ pod: "" }] }),
    field: "spec.traps[0].matchAny[0].pod",
    message: "must not be empty",
    apiMessage: "should be at least 1 chars long",
  },
  {
    name: "regex that does not compile",
    apiVersion: "v1",
    spec: oneTrap({ matchAny: [{ containerName: "regex:(nginx" }] }),
    field: "spec.traps[0].matchAny[0].containerName",
    message: 'Cannot compile regular expression "(nginx"',
  },
  {
    // A backreference needs a backtracking engine; pod authors could aim one at the agent.
    name: "regex with a backreference",
    apiVersion: "v2alpha1",
    spec: oneTrap({ matchAny: [{ containerName: "regex:(a+)\\1" }] }),
    field: "spec.traps[0].matchAny[0].containerName",
    message: 'Cannot compile regular expression "(a+)\\1": backreferences are not supported',
  },
  {
    name: "regex with a lookahead",
    apiVersion: "v1",
    spec: oneTrap({ matchAny: [{ containerName: "regex:(?!db)\\w+" }] }),
    field: "spec.traps[0].matchAny[0].containerName",
    message:
      'Cannot compile regular expression "(?!db)\\w+": lookahead and lookbehind are not supported',
  },
  {
    name: "glob with a range out of order",
    apiVersion: "v1",
    spec: oneTrap({ matchAny: [{ containerName: "glob:web-[9-0]" }] }),
    field: "spec.traps[0].matchAny[0].containerName",
    message: 'Cannot compile glob "web-[9-0]": the range "9-0" is out of order',
  },
  {
    name: "glob that does not compile",
    apiVersion: "v1",
    spec: oneTrap({ matchAny: [{ containerName: "glob:web-[0-9" }] }),
    field: "spec.traps[0].matchAny[0].containerName",
    message: 'Cannot compile glob "web-[0-9": the "[" at offset 4 is never closed by "]"',
  },
  {
    name: "ip that is not an address",
    apiVersion: "v1",
    spec: oneTrap({ matchAny: [{ ip: "10.0.0.0/33" }] }),
    field: "spec.traps[0].matchAny[0].ip",
    message:
      'must be an IP address or a CIDR block (10.0.0.7, fd00::7, 10.0.0.0/24), got "10.0.0.0/33"',
    apiMessage: "must be an IP address or a CIDR block",
  },
  {
    name: "callback with another scheme",
    apiVersion: "v1",
    spec: oneTrap({ callback: "ftp://example.org/ingest" }),
    field: "spec.traps[0].callback",
    message: 'must be an absolute http:// or https:// URL, got "ftp://example.org/ingest"',
    apiMessage: "must be an absolute http:// or https:// URL",
  },
  {
    name: "relative callback",
    apiVersion: "v1",
    spec: oneTrap({ callback: "/ingest" }),
    field: "spec.traps[0].callback",
    message: 'must be an absolute http:// or https:// URL, got "/ingest"',
    apiMessage: "must be an absolute http:// or https:// URL",
  },
  {
    name: "unknown alertVersion",
    apiVersion: "v1",
    spec: { ...oneTrap({}), alertVersion: "v3" },
    field: "spec.alertVersion",
    message: 'must be one of v1, v2alpha1 (empty means v1), got "v3"',
    apiMessage: "must be one of v1, v2alpha1 (empty means v1)",
  },
  {
    name: "empty metadata key",
    apiVersion: "v1",
    spec: oneTrap({ metadata: { "": "x", severity: "high" } }),
    field: "spec.traps[0].metadata",
    message: `${MAP_KEYS}, got an empty key`,
    apiMessage: MAP_KEYS,
  },
  {
    name: "metadata key longer than a label key",
    apiVersion: "v1",
    spec: oneTrap({ metadata: { ["k".repeat(318)]: "x" } }),
    field: "spec.traps[0].metadata",
    message: `${MAP_KEYS}, got a key of 318 characters`,
    apiMessage: MAP_KEYS,
  },
  {
    // 1.2 MB of metadata once made every registration write of the node fail.
    name: "metadata value over 4096 characters",
    apiVersion: "v2alpha1",
    spec: oneTrap({ metadata: { note: "x".repeat(4097) } }),
    field: "spec.traps[0].metadata.note",
    message: "must be at most 4096 characters",
    apiMessage: "Too long",
  },
  {
    name: "empty label key",
    apiVersion: "v1",
    spec: oneTrap({ matchAny: [{ matchLabels: { "": "high" } }] }),
    field: "spec.traps[0].matchAny[0].matchLabels",
    message: `${MAP_KEYS}, got an empty key`,
    apiMessage: MAP_KEYS,
  },
  {
    name: "duplicate traps",
    apiVersion: "v1",
    spec: { traps: [goodTrap(), goodTrap({ mode: 400 }), goodTrap()] },
    field: "spec.traps[1]",
    message: 'repeats spec.traps[0] (same path "/secret.txt" and the same matchAny); ' +
      "merge the two traps or change one",
  },
  {
    name: "unknown action in v2alpha1",
    apiVersion: "v2alpha1",
    spec: oneTrap({ action: "deny" }),
    field: "spec.traps[0].action",
    message: 'must be one of "alert", "block"',
    apiMessage: 'Unsupported value: "deny"',
  },
  {
    name: "negative owner uid in v2alpha1",
    apiVersion: "v2alpha1",
    spec: oneTrap({ owner: { uid: -1, gid: 0 } }),
    field: "spec.traps[0].owner.uid",
    message: "must be at least 0",
    apiMessage: "should be greater than or equal to 0",
  },
  {
    name: "In without values",
    apiVersion: "v1",
    spec: oneTrap({ matchAny: [{ matchExpressions: [{ key: "tier", operator: "In" }] }] }),
    field: "spec.traps[0].matchAny[0].matchExpressions[0].values",
    message: "values must not be empty for operator In",
    apiMessage: "values must not be empty for In and NotIn",
  },
  {
    name: "Exists with values",
    apiVersion: "v2alpha1",
    spec: oneTrap({
      matchAny: [{ matchExpressions: [{ key: "tier", operator: "Exists", values: ["x"] }] }],
    }),
    field: "spec.traps[0].matchAny[0].matchExpressions[0].values",
    message: "values must be empty for operator Exists",
    apiMessage: "must be empty for Exists and DoesNotExist",
  },
  {
    name: "unknown label operator",
    apiVersion: "v1",
    spec: oneTrap({
      matchAny: [{ matchExpressions: [{ key: "tier", operator: "Gt", values: ["1"] }] }],
    }),
    field: "spec.traps[0].matchAny[0].matchExpressions[0].operator",
    message: 'must be one of "In", "NotIn", "Exists", "DoesNotExist"',
    apiMessage: 'Unsupported value: "Gt"',
  },
  {
    name: "bad label key in an expression",
    apiVersion: "v1",
    spec: oneTrap({ matchAny: [{ matchExpressions: [{ key: "a b", operator: "Exists" }] }] }),
    field: "spec.traps[0].matchAny[0].matchExpressions[0].key",
    message: "a label key is an optional DNS prefix",
  },
  {
    name: "bad label value in an expression",
    apiVersion: "v1",
    spec: oneTrap({
      matchAny: [{ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["a b"] }] }],
    }),
    field: "spec.traps[0].matchAny[0].matchExpressions[0].values[0]",
    message: "a label value is empty or at most 63",
  },
  {
    name: "callbackFormat without a callback",
    apiVersion: "v2alpha1",
    spec: oneTrap({ callbackFormat: "falco" }),
    field: "spec.traps[0].callbackFormat",
    message: "callbackFormat is the shape of the callback's body: set callback too",
  },
  {
    name: "unknown callbackFormat",
    apiVersion: "v2alpha1",
    spec: oneTrap({ callback: "http://siem.example/ingest", callbackFormat: "syslog" }),
    field: "spec.traps[0].callbackFormat",
    message: 'must be one of "kive", "falco", "cloudevents"',
    apiMessage: 'Unsupported value: "syslog"',
  },
  {
    name: "content and contentFrom together",
    apiVersion: "v2alpha1",
    spec: oneTrap({ content: "x", contentFrom: { generate: "dotenv" } }),
    field: "spec.traps[0].contentFrom",
    message: "set content or contentFrom, not both",
  },
  {
    name: "unknown decoy kind",
    apiVersion: "v2alpha1",
    spec: oneTrap({ contentFrom: { generate: "passwords" } }),
    field: "spec.traps[0].contentFrom.generate",
    message: 'must be one of "aws-credentials", "kubeconfig"',
    apiMessage: 'Unsupported value: "passwords"',
  },
  {
    name: "generate and secretKeyRef together",
    apiVersion: "v2alpha1",
    spec: oneTrap({
      contentFrom: { generate: "npmrc", secretKeyRef: { name: "decoys", key: "npmrc" } },
    }),
    field: "spec.traps[0].contentFrom",
    message: "must set exactly one of generate, secretKeyRef",
  },
  {
    name: "empty contentFrom",
    apiVersion: "v2alpha1",
    spec: oneTrap({ contentFrom: {} }),
    field: "spec.traps[0].contentFrom",
    message: "must set exactly one of generate, secretKeyRef",
  },
  {
    name: "option the decoy kind does not take",
    apiVersion: "v2alpha1",
    spec: oneTrap({ contentFrom: { generate: "aws-credentials", options: { user: "root" } } }),
    field: "spec.traps[0].contentFrom.options",
    message: '"user" is not an option of aws-credentials; it takes profile, region',
    apiMessage: "options must be ones the generated kind takes",
  },
  {
    name: "decoy option value with a newline",
    apiVersion: "v2alpha1",
    spec: oneTrap({
      contentFrom: { generate: "aws-credentials", options: { region: "eu-west-1\n[admin]" } },
    }),
    field: "spec.traps[0].contentFrom.options.region",
    message: "must be 1 to 253 characters of letters, digits",
    apiMessage: "should match",
  },
  {
    name: "options without generate",
    apiVersion: "v2alpha1",
    spec: oneTrap({
      contentFrom: { secretKeyRef: { name: "decoys", key: "env" }, options: { host: "db" } },
    }),
    field: "spec.traps[0].contentFrom.options",
    message: "options are the options of a generated kind: set generate too",
  },
  {
    name: "secretKeyRef without a key",
    apiVersion: "v2alpha1",
    spec: oneTrap({ contentFrom: { secretKeyRef: { name: "decoys" } } }),
    field: "spec.traps[0].contentFrom.secretKeyRef.key",
    message: "must be a string",
    apiMessage: "Required value",
  },
];
