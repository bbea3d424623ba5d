/**
 * A child process for transport_test.ts: lists Leases in 3 parallel loops until its stdin
 * closes, through the kubeconfig at `$KUBECONFIG`, with kivebpf's transport (or client-node's
 * own with `$LIBRARY_TRANSPORT=1`, to show the crash), then prints
 * `ok=N failed=M okAfterFailure=K` and exits 0.
 */
import { CoordinationV1Api, KubeConfig } from "@kubernetes/client-node";
import { loadKubeConfig } from "../../src/kube/mod.ts";

const path = Deno.env.get("KUBECONFIG")!;
let kubeConfig: KubeConfig;
if (Deno.env.get("LIBRARY_TRANSPORT") === "1") {
  kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(path);
} else kubeConfig = loadKubeConfig(path);
const api = kubeConfig.makeApiClient(CoordinationV1Api);
let running = true;
(async () => {
  for await (const _ of Deno.stdin.readable) { /* until EOF */ }
  running = false;
})();
let ok = 0;
let failed = 0;
let okAfterFailure = 0;
await Promise.all([1, 2, 3].map(async () => {
  while (running) {
    await api.listNamespacedLease({ namespace: "default" }).then(
      () => (failed > 0 ? okAfterFailure++ : ok++),
      () => failed++,
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}));
console.log(`ok=${ok} failed=${failed} okAfterFailure=${okAfterFailure}`);
Deno.exit(0);
