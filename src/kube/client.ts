/**
 * Loading credentials: in a pod, the service account; elsewhere `$KUBECONFIG` or ~/.kube/config.
 *
 * @module
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { DenoKubeConfig } from "./deno_http.ts";

/**
 * Loads the Kubernetes client configuration.
 *
 * @param kubeconfigPath An explicit kubeconfig file; otherwise in-cluster, then the default.
 * @returns The configuration; its API clients send through Deno's fetch (see deno_http.ts).
 */
export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const config = new DenoKubeConfig();
  if (kubeconfigPath) config.loadFromFile(kubeconfigPath);
  else if (Deno.env.get("KUBERNETES_SERVICE_HOST") && !Deno.env.get("KUBECONFIG")) {
    config.loadFromCluster();
  } else config.loadFromDefault();
  return config;
}

/** The HTTP status of a client-node API error, if it is one. */
export function apiStatus(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}
