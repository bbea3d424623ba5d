import assert from "node:assert/strict";
import { GROUP } from "../../src/api/mod.ts";
import { serveWebhooks } from "../../src/webhook/mod.ts";
import { makeTestTls } from "../_support/tls.ts";

Deno.test("serveWebhooks() answers conversion and admission over TLS", async () => {
  const tls = await makeTestTls();
  const server = serveWebhooks({ hostname: "127.0.0.1", port: 0, cert: tls.cert, key: tls.key });
  const client = Deno.createHttpClient({ caCerts: [tls.caCert] });
  try {
    const base = `https://localhost:${server.addr.port}`;
    const health = await fetch(`${base}/healthz`, { client });
    assert.equal(await health.text(), "ok\n");
    const conversion = await fetch(`${base}/convert`, {
      client,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "ConversionReview",
        request: {
          uid: "c1",
          desiredAPIVersion: `${GROUP}/v2alpha1`,
          objects: [{ apiVersion: `${GROUP}/v1`, kind: "KivePolicy", metadata: {}, spec: {} }],
        },
      }),
    });
    const review = await conversion.json();
    assert.equal(review.response.uid, "c1");
    assert.equal(review.response.convertedObjects[0].apiVersion, `${GROUP}/v2alpha1`);
    const garbage = await fetch(`${base}/validate`, { client, method: "POST", body: "{" });
    assert.equal(garbage.status, 400);
    await garbage.body?.cancel();
    const missing = await fetch(`${base}/nope`, { client, method: "POST", body: "{}" });
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    client.close();
    await server.shutdown();
  }
});
