/**
 * The `KivePolicy` API: schemas and types, validation, version conversion, CRD generation and
 * the selector matchers the agent uses.
 *
 * @module
 */
export * from "./policy.ts";
export * from "./node_report.ts";
export * from "./decoy_kinds.ts";
export {
  formatProblems,
  type PolicyProblem,
  type SpecValidation,
  validateSpec,
} from "./validate.ts";
export { convertPolicy, type JsonObject, V2_FIELDS_ANNOTATION } from "./convert.ts";
export {
  buildCrd,
  type BuildCrdOptions,
  buildNodeReportCrd,
  DEFAULT_CONVERSION_SERVICE,
  toCrdSchema,
  type WebhookService,
} from "./crd.ts";
export { formatMode, isChmodMode, MAX_MODE, modeString, parseMode } from "./mode.ts";
export {
  compileContainerName,
  compileIpSelector,
  type Matcher,
  type ParsedAddress,
  parseGlob,
  parseIp,
} from "./selectors.ts";
export {
  compileLabelExpressions,
  LABEL_OPERATORS,
  type LabelExpression,
  labelKeyProblem,
  type LabelOperator,
  labelValueProblem,
} from "./label_selector.ts";
