/**
 * A generated kubeconfig decoy, read by the real kubectl, and shown to open nothing: the real
 * API server refuses its client certificate.
 */
import assert from "node:assert/strict";
import { DecoyFactory } from "../../src/decoys/mod.ts";
import { kubectl } from "../_support/kube.ts";

Deno.test("kubectl reads a decoy kubeconfig, and the API server refuses its credentials", async () => {
  const kubeconfig = Deno.env.get("KUBECONFIG");
  assert.ok(kubeconfig, "KUBECONFIG names the test API server");
  const server = (await Deno.readTextFile(kubeconfig)).match(/server: (\S+)/)?.[1];
  assert.ok(server, "the test kubeconfig names its server");
  const decoy = new DecoyFactory().make("kubeconfig", "KIVE234567ABCDEF", { server });
  const path = await Deno.makeTempFile({ prefix: "kivebpf-decoy-kubeconfig-" });
  try {
    await Deno.writeTextFile(path, decoy);
    const view = await kubectl(["config", "view", "--kubeconfig", path, "-o", "json"]);
    assert.equal(view.code, 0, view.stderr);
    const config = JSON.parse(view.stdout);
    assert.equal(config["current-context"], "deployer-kive234567abcdef@production");
    assert.equal(config.users[0].name, "deployer-kive234567abcdef");
    assert.equal(config.clusters[0].cluster.server, server);
    // The server's certificate is not from the decoy's CA, so skip that check: what is left
    // to see is that the API server does not know the decoy's client certificate.
    const use = await kubectl([
      "get",
      "namespaces",
      "--kubeconfig",
      path,
      "--insecure-skip-tls-verify",
      "--certificate-authority=",
    ]);
    assert.notEqual(use.code, 0, use.stdout);
    assert.match(use.stderr, /Unauthorized|must be logged in/, use.stderr);
  } finally {
    await Deno.remove(path);
  }
});
