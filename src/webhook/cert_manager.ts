/**
 * Webhook TLS without cert-manager: one agent at a time (a Lease) keeps a CA and a serving
 * certificate in a Secret, renews them before they expire, and injects the CA bundle into the
 * CRD's conversion webhook and the validating webhook configuration. Every agent serves with
 * whatever certificate the Secret holds.
 *
 * @module
 */
import {
  type AdmissionregistrationV1Api,
  type ApiextensionsV1Api,
  type CoordinationV1Api,
  type CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from "@kubernetes/client-node";
import { GROUP, PLURAL } from "../api/mod.ts";
import { apiStatus, LeaseElector, ResourceWatcher } from "../kube/mod.ts";
import { certificateExpiry, createCertificateAuthority, issueServingCertificate } from "./certs.ts";
import { VALIDATING_WEBHOOK_NAME } from "./config.ts";

/** Name of the Secret holding the webhook's CA and serving certificate. */
export const WEBHOOK_SECRET = "kivebpf-webhook-tls";
const RENEW_SERVING_DAYS = 30;
const RENEW_CA_DAYS = 90;
const DAY_MS = 86_400_000;

/** The clients the certificate manager needs. */
export interface CertManagerApis {
  /** Credentials and server, for the watch on the Secret. */
  kubeConfig: KubeConfig;
  /** Reads and writes the Secret. */
  core: CoreV1Api;
  /** Holds the Lease that lets one agent at a time write the Secret. */
  coordination: CoordinationV1Api;
  /** Injects the CA bundle into the CRD's conversion webhook. */
  apiextensions: ApiextensionsV1Api;
  /** Injects the CA bundle into the validating webhook configuration. */
  admission: AdmissionregistrationV1Api;
}

/** Options of {@linkcode WebhookCertManager}. */
export interface WebhookCertManagerOptions {
  /** The API clients to work through. */
  apis: CertManagerApis;
  /** The namespace of the Secret, the Lease and the webhook Service. */
  namespace: string;
  /** The webhook Service's name. */
  service: string;
  /** This agent's identity for the Lease. */
  identity: string;
  /** Told about every certificate found in the Secret (PEM). */
  onCertificate: (cert: string, key: string) => void;
  /** Told about failures. */
  onError: (what: string, error: unknown) => void;
  /** How often to look at the Secret. Default 60 s. */
  checkSeconds?: number;
  /** The Secret; default {@linkcode WEBHOOK_SECRET}. */
  secretName?: string;
  /** The CRD whose conversion webhook gets the CA bundle; default the KivePolicy CRD. */
  crdName?: string;
  /** The validating webhook configuration; default {@linkcode VALIDATING_WEBHOOK_NAME}. */
  webhookName?: string;
}

const decode = (value: string | undefined) => value ? atob(value) : "";
const encode = (value: string) => btoa(value);

/** Keeps the webhook certificate valid and served. */
export class WebhookCertManager {
  readonly #o: WebhookCertManagerOptions;
  readonly #elector: LeaseElector;
  readonly #watcher: ResourceWatcher<KubernetesObject>;
  #timer?: ReturnType<typeof setInterval>;
  #served = "";
  #busy?: Promise<void>;

  get #secretName(): string {
    return this.#o.secretName ?? WEBHOOK_SECRET;
  }

  /**
   * Prepares the manager; it neither watches nor writes anything until started.
   *
   * @param options APIs, names and callbacks.
   */
  constructor(options: WebhookCertManagerOptions) {
    this.#o = options;
    this.#elector = new LeaseElector(options.apis.coordination, {
      namespace: options.namespace,
      name: `${options.secretName ?? WEBHOOK_SECRET}-writer`,
      identity: options.identity,
      onChange: (leading) => {
        if (leading) this.#tick();
      },
      onError: (error) => options.onError("webhook certificate lease", error),
    });
    const name = options.secretName ?? WEBHOOK_SECRET;
    this.#watcher = new ResourceWatcher(options.apis.kubeConfig, {
      path: `/api/v1/namespaces/${options.namespace}/secrets`,
      fieldSelector: `metadata.name=${name}`,
      list: () =>
        options.apis.core.listNamespacedSecret({
          namespace: options.namespace,
          fieldSelector: `metadata.name=${name}`,
        }),
      onChange: () => this.#serve(this.#watcher.list()[0] as V1Secret | undefined),
      onError: (error) => options.onError("watch of the webhook Secret", error),
    });
  }

  /** Whether this agent is the certificate writer now (also the policy-wide status writer). */
  get leading(): boolean {
    return this.#elector.leading;
  }

  /** Starts campaigning and watching the Secret. */
  async start(): Promise<void> {
    await this.#watcher.start();
    await this.#elector.start();
    await this.#tick();
    this.#timer = setInterval(() => this.#tick(), (this.#o.checkSeconds ?? 60) * 1000);
  }

  /** Stops; the Secret and the injected bundles stay. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#busy;
    await this.#elector.stop();
    await this.#watcher.stop();
  }

  #tick(): Promise<void> {
    this.#busy ??= (async () => {
      try {
        if (this.#elector.leading) await this.#ensure();
        await this.#load();
      } catch (error) {
        this.#o.onError("webhook certificate", error);
      } finally {
        this.#busy = undefined;
      }
    })();
    return this.#busy;
  }

  async #read(): Promise<V1Secret | undefined> {
    try {
      return await this.#o.apis.core.readNamespacedSecret({
        name: this.#secretName,
        namespace: this.#o.namespace,
      });
    } catch (error) {
      if (apiStatus(error) === 404) return undefined;
      throw error;
    }
  }

  async #load(): Promise<void> {
    this.#serve(await this.#read());
  }

  #serve(secret: V1Secret | undefined): void {
    const cert = decode(secret?.data?.["tls.crt"]);
    const key = decode(secret?.data?.["tls.key"]);
    if (!cert || !key || cert === this.#served) return;
    this.#served = cert;
    this.#o.onCertificate(cert, key);
  }

  /** The leader's job: a valid CA and serving certificate in the Secret, the bundle injected. */
  async #ensure(): Promise<void> {
    const { core } = this.#o.apis;
    const secret = await this.#read();
    const data = secret?.data ?? {};
    let ca = { cert: decode(data["ca.crt"]), key: decode(data["ca.key"]) };
    let serving = { cert: decode(data["tls.crt"]), key: decode(data["tls.key"]) };
    const expiresWithin = (pem: string, days: number) => {
      try {
        return certificateExpiry(pem).getTime() - Date.now() < days * DAY_MS;
      } catch {
        return true;
      }
    };
    let changed = false;
    let bundle = decode(data["ca-bundle.crt"]) || ca.cert;
    if (!ca.cert || !ca.key || expiresWithin(ca.cert, RENEW_CA_DAYS)) {
      const fresh = await createCertificateAuthority("kivebpf-webhook-ca");
      // Trust old and new CA until every API server has the new bundle.
      bundle = fresh.cert + (ca.cert && !expiresWithin(ca.cert, 0) ? ca.cert : "");
      ca = fresh;
      serving = { cert: "", key: "" };
      changed = true;
    }
    if (!serving.cert || !serving.key || expiresWithin(serving.cert, RENEW_SERVING_DAYS)) {
      const { namespace, service } = this.#o;
      serving = await issueServingCertificate(ca, [
        `${service}.${namespace}.svc`,
        `${service}.${namespace}.svc.cluster.local`,
        `${service}.${namespace}`,
      ]);
      changed = true;
    }
    if (changed) {
      const body: V1Secret = {
        apiVersion: "v1",
        kind: "Secret",
        type: "kubernetes.io/tls",
        metadata: {
          name: this.#secretName,
          namespace: this.#o.namespace,
          labels: { "app.kubernetes.io/name": "kivebpf" },
          resourceVersion: secret?.metadata?.resourceVersion,
        },
        data: {
          "tls.crt": encode(serving.cert),
          "tls.key": encode(serving.key),
          "ca.crt": encode(ca.cert),
          "ca.key": encode(ca.key),
          "ca-bundle.crt": encode(bundle),
        },
      };
      // Conditional on the version read: a second writer gets 409 instead of a lost update.
      if (secret) {
        await core.replaceNamespacedSecret({
          name: this.#secretName,
          namespace: this.#o.namespace,
          body,
        });
      } else await core.createNamespacedSecret({ namespace: this.#o.namespace, body });
    }
    await this.#inject(encode(bundle));
  }

  async #inject(caBundle: string): Promise<void> {
    const { apiextensions, admission } = this.#o.apis;
    const crdName = this.#o.crdName ?? `${PLURAL}.${GROUP}`;
    const webhookName = this.#o.webhookName ?? VALIDATING_WEBHOOK_NAME;
    const crd = await apiextensions.readCustomResourceDefinition({ name: crdName });
    if (crd.spec.conversion?.webhook?.clientConfig?.caBundle !== caBundle) {
      await apiextensions.patchCustomResourceDefinition(
        {
          name: crdName,
          body: { spec: { conversion: { webhook: { clientConfig: { caBundle } } } } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    }
    const config = await admission.readValidatingWebhookConfiguration({ name: webhookName });
    const patches = (config.webhooks ?? []).flatMap((webhook, index) =>
      webhook.clientConfig.caBundle === caBundle
        ? []
        : [{ op: "add", path: `/webhooks/${index}/clientConfig/caBundle`, value: caBundle }]
    );
    if (patches.length > 0) {
      await admission.patchValidatingWebhookConfiguration(
        { name: webhookName, body: patches },
        setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
      );
    }
  }
}
