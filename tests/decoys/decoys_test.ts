/**
 * Every decoy kind, read back by the real tool that reads such files (ssh-keygen, openssl,
 * Python's configparser, jq), and 1,000 copies of each pairwise distinct.
 */
import assert from "node:assert/strict";
import { runCommand } from "../../scripts/_run.ts";
import { DECOY_KIND_NAMES, type DecoyKind } from "../../src/api/mod.ts";
import { base32, DecoyFactory, decoyId, decoyMark, isDecoyId } from "../../src/decoys/mod.ts";
import { gcpServiceAccount, RsaKeys } from "../../src/decoys/gcp_key.ts";

const factory = new DecoyFactory();
const ID = "KIVE234567ABCDEF";

async function make(kind: DecoyKind, options: Record<string, string> = {}, id = ID) {
  await factory.ready(kind);
  return factory.make(kind, id, options);
}

async function tool(command: string, args: string[], stdin = ""): Promise<string> {
  const result = await runCommand(command, args, { stdin });
  assert.equal(result.code, 0, `${command} ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

async function tempFile(text: string, mode = 0o600): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "kivebpf-decoy-" });
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, mode);
  return path;
}

Deno.test("aws-credentials: configparser reads the profile, the key id is AKIA and the decoy id", async () => {
  const text = await make("aws-credentials", { profile: "prod", region: "eu-west-1" });
  const read = await tool("python3", [
    "-c",
    "import configparser,json,sys; c=configparser.ConfigParser(); c.read_string(sys.stdin.read());" +
    "print(json.dumps({s: dict(c[s]) for s in c.sections()}))",
  ], text);
  const profile = JSON.parse(read).prod;
  assert.equal(profile.aws_access_key_id, `AKIA${ID}`);
  assert.match(profile.aws_access_key_id, /^AKIA[A-Z2-7]{16}$/);
  assert.match(profile.aws_secret_access_key, /^[A-Za-z0-9+/]{40}$/);
  assert.equal(profile.region, "eu-west-1");
});

Deno.test("ssh-private-key: ssh-keygen -y reads the key and its comment carries the decoy id", async () => {
  const path = await tempFile(await make("ssh-private-key", { user: "git", host: "ci" }));
  try {
    const publicKey = await tool("ssh-keygen", ["-y", "-f", path]);
    assert.match(
      publicKey,
      /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5[A-Za-z0-9+/]+ git-kive234567abcdef@ci\n$/,
    );
    const fingerprint = await tool("ssh-keygen", ["-l", "-f", path]);
    assert.match(fingerprint, /^256 SHA256:\S+ git-kive234567abcdef@ci \(ED25519\)/);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("kubeconfig: openssl verifies the client certificate against the CA and the key matches it", async () => {
  const text = await make("kubeconfig", { server: "https://203.0.113.9:6443", user: "admin" });
  const field = (name: string) => {
    const match = text.match(new RegExp(`${name}: (\\S+)`));
    assert.ok(match, `no ${name}`);
    return atob(match[1]);
  };
  const ca = await tempFile(field("certificate-authority-data"));
  const cert = await tempFile(field("client-certificate-data"));
  try {
    const subject = await tool("openssl", ["x509", "-noout", "-subject", "-in", cert]);
    assert.match(subject, /O = system:masters, CN = admin-kive234567abcdef/);
    assert.match(await tool("openssl", ["verify", "-CAfile", ca, cert]), /: OK/);
    const caText = await tool("openssl", ["x509", "-noout", "-text", "-in", ca]);
    assert.match(caText, /CA:TRUE/);
    const key = field("client-key-data");
    assert.match(await tool("openssl", ["pkey", "-noout", "-check"], key), /valid/i);
    const keyPublic = await tool("openssl", ["pkey", "-pubout"], key);
    const certPublic = await tool("openssl", ["x509", "-noout", "-pubkey", "-in", cert]);
    assert.equal(keyPublic, certPublic);
    assert.match(text, /server: https:\/\/203\.0\.113\.9:6443/);
    assert.match(text, /current-context: admin-kive234567abcdef@production/);
  } finally {
    await Deno.remove(ca);
    await Deno.remove(cert);
  }
});

Deno.test("gcp-service-account: jq reads the key file and openssl the RSA 2048 private key", async () => {
  const text = await make("gcp-service-account", { project: "acme-prod" });
  const email = await tool("jq", ["-r", ".client_email"], text);
  assert.equal(email, "deployer-kive234567abcdef@acme-prod.iam.gserviceaccount.com\n");
  assert.equal(await tool("jq", ["-r", ".type"], text), "service_account\n");
  const key = await tool("jq", ["-r", ".private_key"], text);
  assert.match(await tool("openssl", ["pkey", "-noout", "-text"], key), /Private-Key: \(2048 bit/);
  assert.match(await tool("jq", ["-r", ".private_key_id"], text), /^[0-9a-f]{40}\n$/);
});

Deno.test("docker-config: jq reads auths and the base64 credentials name the decoy id", async () => {
  const text = await make("docker-config", { registry: "registry.example.com" });
  const auth = await tool("jq", ["-r", '.auths["registry.example.com"].auth'], text);
  assert.match(atob(auth.trim()), /^ci-kive234567abcdef:dckr_pat_[A-Za-z0-9]{27}$/);
});

Deno.test("dotenv, pgpass, git-credentials and npmrc have their tools' line formats", async () => {
  const env = await make("dotenv", { host: "pg.prod", database: "shop" });
  const sourced = await tool("sh", ["-c", 'set -a; . /dev/stdin; echo "$DATABASE_URL"'], env);
  assert.match(
    sourced,
    /^postgres:\/\/app_kive234567abcdef:[A-Za-z0-9]{24}@pg\.prod:5432\/shop\n$/,
  );
  const url = new URL(sourced.trim());
  assert.equal(url.username, "app_kive234567abcdef");

  const pgpass = await make("pgpass", { port: "6432" });
  assert.match(pgpass, /^db\.internal:6432:app:app_kive234567abcdef:[A-Za-z0-9]{24}\n$/);

  const git = new URL((await make("git-credentials")).trim());
  assert.equal(git.username, "ci-bot-kive234567abcdef");
  assert.match(git.password, /^ghp_[A-Za-z0-9]{36}$/);
  assert.equal(git.host, "github.com");

  const npmrc = await make("npmrc");
  assert.match(
    npmrc,
    /^\/\/registry\.npmjs\.org\/:_authToken=npm_KIVE234567ABCDEF[A-Za-z0-9]{20}\n$/,
  );
});

Deno.test("1,000 copies of every kind are pairwise distinct", async () => {
  for (const kind of DECOY_KIND_NAMES.filter((k) => k !== "gcp-service-account")) {
    const copies = new Set<string>();
    for (let i = 0; i < 1000; i++) copies.add(await make(kind, {}, randomId()));
    assert.equal(copies.size, 1000, kind);
  }
});

Deno.test("1,000 gcp key files are pairwise distinct, and their RSA keys too", async () => {
  // An RSA key takes 0.1-0.2 s to make: 1,000 files share 20 keys here, which are checked
  // apart; each file also differs in its key id, e-mail address and client id.
  const keys = new RsaKeys({ perMinute: 20 });
  const pems: string[] = [];
  for (let i = 0; i < 20; i++) {
    await keys.ready();
    pems.push(keys.take());
  }
  assert.equal(new Set(pems).size, 20);
  const files = new Set<string>();
  for (let i = 0; i < 1000; i++) files.add(gcpServiceAccount(randomId(), {}, pems[i % 20]));
  assert.equal(files.size, 1000);
  const ids = new Set([...files].map((file) => JSON.parse(file).private_key_id));
  assert.equal(ids.size, 1000);
});

function randomId(): string {
  return base32(crypto.getRandomValues(new Uint8Array(10)));
}

const place = {
  policyUid: "6b1c0d3e-policy",
  trapIndex: 0,
  podUid: "pod-uid-1",
  containerName: "app",
  dev: 8388609,
  ino: "131075",
  btime: "1764884000123456789",
};

Deno.test("decoyId() is 16 base32 characters, the same for the same file and different for another", () => {
  const id = decoyId(place);
  assert.ok(isDecoyId(id), id);
  assert.equal(decoyId({ ...place }), id, "a restarted agent derives the same id");
  const others = [
    { ...place, ino: "131076" },
    { ...place, btime: "1764884000123456790" },
    { ...place, podUid: "pod-uid-2" },
    { ...place, containerName: "sidecar" },
    { ...place, trapIndex: 1 },
    { ...place, policyUid: "another-policy" },
    { ...place, btime: undefined },
  ];
  assert.equal(new Set([id, ...others.map(decoyId)]).size, others.length + 1);
});

Deno.test("decoyMark() is a nanosecond fraction, apart from the id, and changes with the file", () => {
  const mark = decoyMark(place);
  assert.ok(Number.isInteger(mark) && mark >= 0 && mark < 1_000_000_000, `${mark}`);
  assert.equal(decoyMark({ ...place }), mark);
  assert.notEqual(decoyMark({ ...place, ino: "131076" }), mark);
});

Deno.test("base32() encodes as RFC 4648 does, without padding", () => {
  const ascii = (text: string) => new TextEncoder().encode(text);
  assert.equal(base32(ascii("foobar")), "MZXW6YTBOI");
  assert.equal(base32(ascii("f")), "MY");
  assert.equal(base32(new Uint8Array(10)), "AAAAAAAAAAAAAAAA");
});

Deno.test("RsaKeys makes at most its keys a minute and then hands out the last one again", async () => {
  let now = 0;
  const keys = new RsaKeys({ perMinute: 2, now: () => now });
  assert.throws(() => keys.take(), /await RsaKeys.ready\(\) first/);
  const taken: string[] = [];
  for (let i = 0; i < 4; i++) {
    await keys.ready();
    taken.push(keys.take());
  }
  assert.equal(new Set(taken).size, 2, "two keys made, the second handed out again");
  assert.equal(taken[3], taken[1]);
  now += 60_000;
  await keys.ready();
  assert.ok(!taken.includes(keys.take()), "a new minute, a new key");
});
