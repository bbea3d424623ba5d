/**
 * The conversion and validating webhooks of `KivePolicy`, served over TLS.
 *
 * @module
 */
export {
  type AdmissionReview,
  type ConversionReview,
  handleAdmission,
  handleConversion,
} from "./reviews.ts";
export { routeWebhook, serveWebhooks, type WebhookServerOptions } from "./server.ts";
export {
  buildValidatingWebhook,
  VALIDATING_WEBHOOK_NAME,
  type ValidatingWebhookOptions,
} from "./config.ts";
// Re-exported because the reviews and ValidatingWebhookOptions name them: the parts of a public
// type must be public too.
export type { JsonObject, WebhookService } from "../api/mod.ts";
export {
  certificateExpiry,
  type CertificateOptions,
  createCertificateAuthority,
  issueServingCertificate,
  type KeyPair,
} from "./certs.ts";
export {
  type CertManagerApis,
  WEBHOOK_SECRET,
  WebhookCertManager,
  type WebhookCertManagerOptions,
} from "./cert_manager.ts";
