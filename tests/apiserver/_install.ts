/**
 * Installs the KivePolicy API into the test API server the way a cluster has it: the CRD with
 * webhook conversion and the validating webhook, both served by `mod.ts webhook` over TLS on
 * loopback (the API server runs outside any cluster here, so the webhooks are reached by URL).
 *
 * @module
 */
import {
  buildCrd,
  buildNodeReportCrd,
  GROUP,
  NODE_REPORT_PLURAL,
  PLURAL,
} from "../../src/api/mod.ts";
import { buildValidatingWebhook, VALIDATING_WEBHOOK_NAME } from "../../src/webhook/mod.ts";
import { freePort, TestKube } from "../_support/kube.ts";
import { makeTestTls } from "../_support/tls.ts";
import { waitFor } from "../_support/wait.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The installed API and the webhook process behind it. */
export interface InstalledApi {
  kube: TestKube;
  /** Stops the webhook process and closes the client. */
  close(): Promise<void>;
}

/** Server-side applies an object with the test's field manager. */
export function apply(kube: TestKube, path: string, object: unknown): Promise<unknown> {
  return kube.ok(
    "PATCH",
    `${path}?fieldManager=kivebpf-test&force=true`,
    object,
    "application/apply-patch+yaml",
  );
}

/**
 * Starts the webhooks and installs the CRD and webhook configuration.
 *
 * @returns The client and a close function.
 */
export async function installApi(): Promise<InstalledApi> {
  const kube = await TestKube.fromEnv();
  const tls = await makeTestTls();
  const dir = await Deno.makeTempDir({ prefix: "kivebpf-webhook-" });
  await Deno.writeTextFile(`${dir}/tls.crt`, tls.cert);
  await Deno.writeTextFile(`${dir}/tls.key`, tls.key);
  const port = freePort();
  const webhook = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}mod.ts`,
      "webhook",
      "--cert",
      `${dir}/tls.crt`,
      "--key",
      `${dir}/tls.key`,
      "--host",
      "127.0.0.1",
      "--port",
      `${port}`,
    ],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const https = Deno.createHttpClient({ caCerts: [tls.caCert] });
  try {
    await waitFor("the webhook server", async () => {
      const response = await fetch(`https://127.0.0.1:${port}/healthz`, { client: https });
      return (await response.text()) === "ok\n" ? true : undefined;
    });
  } finally {
    https.close();
  }
  const caBundle = btoa(tls.caCert);
  const base = `https://127.0.0.1:${port}`;
  const crdName = `${PLURAL}.${GROUP}`;
  await apply(
    kube,
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`,
    buildCrd({ url: `${base}/convert`, caBundle }),
  );
  await apply(
    kube,
    `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${VALIDATING_WEBHOOK_NAME}`,
    buildValidatingWebhook({ url: `${base}/validate`, caBundle }),
  );
  const reportCrdName = `${NODE_REPORT_PLURAL}.${GROUP}`;
  await apply(
    kube,
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${reportCrdName}`,
    buildNodeReportCrd(),
  );
  for (const name of [crdName, reportCrdName]) {
    await waitFor(`the CRD ${name} to be established`, async () => {
      const crd = await kube.ok(
        "GET",
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
      );
      // deno-lint-ignore no-explicit-any
      return crd.status?.conditions?.some((c: any) =>
          c.type === "Established" && c.status === "True"
        )
        ? true
        : undefined;
    });
  }
  for (const namespace of ["kivebpf-system", "shop"]) {
    await apply(kube, `/api/v1/namespaces/${namespace}`, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: namespace },
    });
  }
  // The webhook configuration reaches the admission chain a moment after it is stored; probe
  // with a dry-run create that only the webhook rejects (a NUL byte in the path).
  await waitFor("the validating webhook to be active", async () => {
    const response = await kube.request(
      "POST",
      `/apis/${GROUP}/v1/namespaces/kivebpf-system/${PLURAL}?dryRun=All`,
      {
        apiVersion: `${GROUP}/v1`,
        kind: "KivePolicy",
        metadata: { name: "webhook-probe" },
        spec: { traps: [{ path: "/a\u0000", matchAny: [{ pod: "p" }] }] },
      },
    );
    return String(response.body?.message).includes("admission webhook") ? true : undefined;
  });
  return {
    kube,
    async close() {
      webhook.kill("SIGTERM");
      await webhook.status;
      kube.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
