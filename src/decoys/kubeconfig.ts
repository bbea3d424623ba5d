/**
 * A kubeconfig with one cluster, user and context: a fresh self-signed CA and a client
 * certificate and key it signed, for the user `<user>-<id>` in the group `system:masters`, the
 * kind of file an intruder hopes to find. The certificates parse; the CA trusts nothing real.
 *
 * @module
 */
import { clientCertificate, selfSignedCa } from "./_x509.ts";
import type { DecoyOptions } from "./text_decoys.ts";

const base64 = (text: string) => btoa(text);

/**
 * The kubeconfig, laid out as `kubectl config view --raw` prints one.
 *
 * @param id The decoy id, in the user name and the client certificate's CN.
 * @param options `server`, `cluster`, `user` and `namespace`.
 */
export function kubeconfig(id: string, options: DecoyOptions): string {
  const cluster = options.cluster ?? "production";
  const user = `${options.user ?? "deployer"}-${id.toLowerCase()}`;
  const context = `${user}@${cluster}`;
  const ca = selfSignedCa({ commonName: "kubernetes" });
  const client = clientCertificate(ca, { commonName: user, organization: "system:masters" });
  return [
    "apiVersion: v1",
    "clusters:",
    "- cluster:",
    `    certificate-authority-data: ${base64(ca.certificatePem)}`,
    `    server: ${options.server ?? "https://10.96.0.1:443"}`,
    `  name: ${cluster}`,
    "contexts:",
    "- context:",
    `    cluster: ${cluster}`,
    `    namespace: ${options.namespace ?? "default"}`,
    `    user: ${user}`,
    `  name: ${context}`,
    `current-context: ${context}`,
    "kind: Config",
    "preferences: {}",
    "users:",
    `- name: ${user}`,
    "  user:",
    `    client-certificate-data: ${base64(client.certificatePem)}`,
    `    client-key-data: ${base64(client.keyPem)}`,
    "",
  ].join("\n");
}
