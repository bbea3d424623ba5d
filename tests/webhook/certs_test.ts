import assert from "node:assert/strict";
import {
  certificateExpiry,
  createCertificateAuthority,
  issueServingCertificate,
} from "../../src/webhook/certs.ts";
import { serveWebhooks } from "../../src/webhook/mod.ts";

async function openssl(args: string[], stdinFiles: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    for (const [name, text] of Object.entries(stdinFiles)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    return text;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("createCertificateAuthority() and issueServingCertificate() make certificates openssl verifies", async () => {
  const ca = await createCertificateAuthority("kivebpf-webhook-ca");
  const serving = await issueServingCertificate(ca, [
    "kivebpf-webhook.kivebpf-system.svc",
    "kivebpf-webhook.kivebpf-system.svc.cluster.local",
  ], { ipAddresses: ["127.0.0.1"] });
  const verified = await openssl(["verify", "-CAfile", "ca.crt", "tls.crt"], {
    "ca.crt": ca.cert,
    "tls.crt": serving.cert,
  });
  assert.match(verified, /tls\.crt: OK/);
  const text = await openssl(["x509", "-in", "tls.crt", "-noout", "-text"], {
    "tls.crt": serving.cert,
  });
  assert.match(text, /Issuer: CN ?= ?kivebpf-webhook-ca/);
  assert.match(
    text,
    /DNS:kivebpf-webhook\.kivebpf-system\.svc, DNS:kivebpf-webhook\.kivebpf-system\.svc\.cluster\.local, IP Address:127\.0\.0\.1/,
  );
  assert.match(text, /TLS Web Server Authentication/);
  const caText = await openssl(["x509", "-in", "ca.crt", "-noout", "-text"], { "ca.crt": ca.cert });
  assert.match(caText, /CA:TRUE/);
  await openssl(["pkey", "-in", "tls.key", "-noout"], { "tls.key": serving.key });
});

Deno.test("certificateExpiry() reads back notAfter", async () => {
  const ca = await createCertificateAuthority("ca", { days: 10 });
  const serving = await issueServingCertificate(ca, ["a.example"], { days: 3 });
  assert.equal(
    certificateExpiry(ca.cert).getTime(),
    Math.floor(ca.notAfter.getTime() / 1000) * 1000,
  );
  assert.equal(
    certificateExpiry(serving.cert).getTime(),
    Math.floor(serving.notAfter.getTime() / 1000) * 1000,
  );
});

Deno.test("a Deno TLS server presents the issued certificate and clients trusting the CA connect", async () => {
  const ca = await createCertificateAuthority("kivebpf-test-ca");
  const serving = await issueServingCertificate(ca, ["localhost"], { ipAddresses: ["127.0.0.1"] });
  const server = serveWebhooks({
    hostname: "127.0.0.1",
    port: 0,
    cert: serving.cert,
    key: serving.key,
  });
  const client = Deno.createHttpClient({ caCerts: [ca.cert] });
  try {
    const response = await fetch(`https://localhost:${server.addr.port}/healthz`, { client });
    assert.equal(await response.text(), "ok\n");
  } finally {
    client.close();
    await server.shutdown();
  }
});
