/**
 * The webhook certificate manager against a real API server: one writer creates the CA and
 * serving certificate, injects the bundle, renews what expires, and every agent is told.
 * It works on a CRD and webhook configuration of its own so the KivePolicy ones stay intact.
 */
import assert from "node:assert/strict";
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  CoordinationV1Api,
  CoreV1Api,
} from "@kubernetes/client-node";
import { loadKubeConfig } from "../../src/kube/mod.ts";
import {
  createCertificateAuthority,
  issueServingCertificate,
  WebhookCertManager,
} from "../../src/webhook/mod.ts";
import { TestKube } from "../_support/kube.ts";
import { waitFor } from "../_support/wait.ts";
import { apply } from "./_install.ts";

const NS = "cert-test";
const CRD = "widgets.certs.kivebpf.test";
const WEBHOOK = "widgets.certs.kivebpf.test";

async function setup(kube: TestKube): Promise<void> {
  await apply(kube, `/api/v1/namespaces/${NS}`, {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: NS },
  });
  await apply(kube, `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD}`, {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: CRD },
    spec: {
      group: "certs.kivebpf.test",
      names: { kind: "Widget", plural: "widgets" },
      scope: "Namespaced",
      versions: ["v1", "v2"].map((name) => ({
        name,
        served: true,
        storage: name === "v2",
        schema: {
          openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
        },
      })),
      conversion: {
        strategy: "Webhook",
        webhook: {
          conversionReviewVersions: ["v1"],
          clientConfig: { url: "https://127.0.0.1:1/convert" },
        },
      },
    },
  });
  await apply(
    kube,
    `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${WEBHOOK}`,
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: WEBHOOK },
      webhooks: [{
        name: WEBHOOK,
        admissionReviewVersions: ["v1"],
        sideEffects: "None",
        failurePolicy: "Ignore",
        clientConfig: { url: "https://127.0.0.1:1/validate" },
        rules: [{
          apiGroups: ["certs.kivebpf.test"],
          apiVersions: ["*"],
          operations: ["CREATE"],
          resources: ["widgets"],
        }],
      }],
    },
  );
}

function manager(identity: string, seen: string[]): WebhookCertManager {
  const config = loadKubeConfig(Deno.env.get("KUBECONFIG"));
  return new WebhookCertManager({
    apis: {
      kubeConfig: config,
      core: config.makeApiClient(CoreV1Api),
      coordination: config.makeApiClient(CoordinationV1Api),
      apiextensions: config.makeApiClient(ApiextensionsV1Api),
      admission: config.makeApiClient(AdmissionregistrationV1Api),
    },
    namespace: NS,
    service: "kivebpf-webhook",
    identity,
    secretName: "widget-webhook-tls",
    crdName: CRD,
    webhookName: WEBHOOK,
    onCertificate: (cert) => seen.push(cert),
    onError: (what, error) => console.error(what, error),
  });
}

Deno.test({
  name:
    "WebhookCertManager writes one certificate, injects the CA bundle and renews a certificate near expiry",
  // client-node keeps HTTP agents alive past the test; the resources are its, not ours.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const kube = await TestKube.fromEnv();
    try {
      await setup(kube);
      const seenA: string[] = [];
      const seenB: string[] = [];
      const a = manager("node-a", seenA);
      const b = manager("node-b", seenB);
      await a.start();
      await b.start();
      try {
        const secretPath = `/api/v1/namespaces/${NS}/secrets/widget-webhook-tls`;
        const secret = await waitFor("the Secret", async () => {
          const response = await kube.request("GET", secretPath);
          return response.status === 200 ? response.body : undefined;
        });
        assert.equal(secret.type, "kubernetes.io/tls");
        const bundle = secret.data["ca-bundle.crt"];
        const crd = await kube.ok(
          "GET",
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD}`,
        );
        assert.equal(crd.spec.conversion.webhook.clientConfig.caBundle, bundle);
        const webhook = await kube.ok(
          "GET",
          `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${WEBHOOK}`,
        );
        assert.equal(webhook.webhooks[0].clientConfig.caBundle, bundle);
        const served = atob(secret.data["tls.crt"]);
        await waitFor(
          "both agents to serve it",
          () =>
            Promise.resolve(seenA.includes(served) && seenB.includes(served) ? true : undefined),
        );

        // A certificate close to expiry is renewed by the writer and picked up by every agent.
        const ca = { cert: atob(secret.data["ca.crt"]), key: atob(secret.data["ca.key"]) };
        const shortLived = await issueServingCertificate(ca, ["kivebpf-webhook.cert-test.svc"], {
          days: 2,
        });
        await kube.ok("PUT", secretPath, {
          ...secret,
          data: {
            ...secret.data,
            "tls.crt": btoa(shortLived.cert),
            "tls.key": btoa(shortLived.key),
          },
        });
        await (a as unknown as { stop(): Promise<void> }).stop();
        const c = manager("node-a", seenA);
        await c.start();
        try {
          const renewed = await waitFor("the renewed certificate", async () => {
            const now = await kube.ok("GET", secretPath);
            const cert = atob(now.data["tls.crt"]);
            return cert !== shortLived.cert && cert !== served ? cert : undefined;
          });
          assert.equal(
            (await kube.ok("GET", secretPath)).data["ca.crt"],
            secret.data["ca.crt"],
            "same CA",
          );
          await waitFor(
            "agent B to serve the renewed certificate",
            () => Promise.resolve(seenB.includes(renewed) ? true : undefined),
          );
        } finally {
          await c.stop();
        }
      } finally {
        await b.stop();
      }
    } finally {
      kube.close();
    }
  },
});

Deno.test("createCertificateAuthority() is used for a fresh CA when none exists (smoke)", async () => {
  const ca = await createCertificateAuthority("x");
  assert.match(ca.cert, /BEGIN CERTIFICATE/);
});
