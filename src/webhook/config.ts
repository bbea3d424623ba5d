/**
 * The `ValidatingWebhookConfiguration` that routes KivePolicy writes to our `/validate`.
 *
 * @module
 */
import {
  DEFAULT_CONVERSION_SERVICE,
  GROUP,
  PLURAL,
  VERSIONS,
  type WebhookService,
} from "../api/mod.ts";

/** Name of the webhook configuration and of its single webhook. */
export const VALIDATING_WEBHOOK_NAME = `${PLURAL}.${GROUP}`;

/** Options of {@linkcode buildValidatingWebhook}. */
export interface ValidatingWebhookOptions {
  /** The in-cluster Service; defaults to the install manifest's, path `/validate`. */
  service?: WebhookService;
  /** A URL instead of a Service, for API servers outside a cluster (tests). */
  url?: string;
  /** Base64 PEM of the CA that signed the webhook's certificate. */
  caBundle?: string;
}

/**
 * Builds the webhook configuration. It fails closed (`failurePolicy: Fail`): a policy that was
 * not validated is never stored.
 *
 * @param options Where the webhook runs.
 * @returns The object, ready for YAML or the API.
 */
export function buildValidatingWebhook(
  options: ValidatingWebhookOptions = {},
): Record<string, unknown> {
  const clientConfig: Record<string, unknown> = options.url
    ? { url: options.url }
    : { service: { ...(options.service ?? DEFAULT_CONVERSION_SERVICE), path: "/validate" } };
  if (options.caBundle) clientConfig.caBundle = options.caBundle;
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: { name: VALIDATING_WEBHOOK_NAME, labels: { "app.kubernetes.io/name": "kivebpf" } },
    webhooks: [{
      name: VALIDATING_WEBHOOK_NAME,
      admissionReviewVersions: ["v1"],
      sideEffects: "None",
      failurePolicy: "Fail",
      matchPolicy: "Equivalent",
      timeoutSeconds: 10,
      clientConfig,
      rules: [{
        apiGroups: [GROUP],
        apiVersions: [...VERSIONS],
        operations: ["CREATE", "UPDATE"],
        resources: [PLURAL],
        scope: "Namespaced",
      }],
    }],
  };
}
