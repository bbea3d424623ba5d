import assert from "node:assert/strict";
import { checkAgentFlags, checkWebhookFlags, MAX_TRAPS_LIMIT } from "../../src/agent/config.ts";

const DEFAULTS = {
  backend: "auto",
  output: "text",
  "log-level": "info",
  "max-traps": "65536",
  "metrics-port": "9090",
  "webhook-port": "0",
  "lease-seconds": "15",
  "verify-seconds": "60",
  "callback-timeout-seconds": "10",
  "callback-retry-seconds": "300",
  "bpf-pin-dir": "/sys/fs/bpf/kivebpf",
  node: "node-a.example",
  namespace: "kivebpf-system",
  proc: "/proc",
  "webhook-service": "kivebpf-webhook",
};

Deno.test("checkAgentFlags() accepts the defaults and types the numbers", () => {
  const result = checkAgentFlags(DEFAULTS);
  assert.ok(result.ok);
  assert.equal(result.flags["max-traps"], 65536);
  assert.equal(result.flags["lease-seconds"], 15);
  const unpinned = checkAgentFlags({ ...DEFAULTS, "bpf-pin-dir": "" });
  assert.ok(unpinned.ok && unpinned.flags["bpf-pin-dir"] === "");
});

for (
  const [flag, value, message] of [
    [
      "callback-timeout-seconds",
      "301",
      "--callback-timeout-seconds must be a whole number from 1 to 300",
    ],
    ["verify-seconds", "0", "--verify-seconds must be a whole number from 1 to 86400"],
    ["alert-format", "syslog", "--alert-format must be one of kive, falco, cloudevents"],
    ["max-traps", "abc", `--max-traps must be a whole number from 1 to ${MAX_TRAPS_LIMIT}`],
    ["max-traps", "0", "--max-traps must be a whole number"],
    ["max-traps", "1e3", "--max-traps must be a whole number"],
    ["max-traps", String(MAX_TRAPS_LIMIT + 1), "--max-traps must be a whole number"],
    ["metrics-port", "70000", "--metrics-port must be a whole number from 0 to 65535"],
    ["lease-seconds", "-5", "--lease-seconds must be a whole number from 2"],
    ["backend", "ebpf", "--backend must be auto or one of lsm, fentry, kprobe, tracepoint"],
    ["output", "xml", "--output must be text or json"],
    ["log-level", "loud", "--log-level must be debug, info, warn or error"],
    ["bpf-pin-dir", "sys/fs/bpf", "--bpf-pin-dir must be an absolute path on bpffs"],
    ["bpf-pin-dir", "/sys/fs/bpf/../../etc", "--bpf-pin-dir must be an absolute path on bpffs"],
    ["node", "Node_A", "--node (or $NODE_NAME) must be a DNS subdomain"],
    ["node", "a".repeat(254), "--node (or $NODE_NAME) must be a DNS subdomain"],
    ["namespace", "kube.system", "--namespace (or $POD_NAMESPACE) must be a DNS label"],
    ["kernel-id", "../../etc", "--kernel-id must be 1-63 letters, digits"],
    ["proc", "proc", '--proc must be an absolute path without ".."'],
    ["cgroup-root", "/sys/fs/cgroup/../..", '--cgroup-root must be an absolute path without ".."'],
    ["webhook-service", "Web Hook", "--webhook-service must be a DNS label"],
  ] as const
) {
  Deno.test(`checkAgentFlags() refuses --${flag}=${value}, naming the flag and the value`, () => {
    const result = checkAgentFlags({ ...DEFAULTS, [flag]: value });
    assert.ok(!result.ok);
    assert.equal(result.problems.length, 1);
    assert.ok(result.problems[0].startsWith(message), result.problems[0]);
    assert.ok(result.problems[0].endsWith(`got "${value}"`), result.problems[0]);
  });
}

Deno.test("`kivebpf agent --max-traps abc` exits 2 naming the flag, before touching the API or BPF", async () => {
  // No kubeconfig and no API server exist for this process: a check that ran after any
  // API call or BPF load would fail differently.
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../mod.ts", import.meta.url).pathname, "agent"].concat([
      "--node",
      "n1",
      "--kubeconfig",
      "/nonexistent/kubeconfig",
      "--max-traps",
      "abc",
    ]),
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 2, text);
  assert.match(text, /--max-traps must be a whole number from 1 to \d+, got "abc"/);
});

Deno.test("checkAgentFlags() names a missing node and a lone webhook certificate file", () => {
  const { node: _, ...noNode } = DEFAULTS;
  const missing = checkAgentFlags(noNode);
  assert.ok(!missing.ok);
  assert.deepEqual(missing.problems, ["--node (or $NODE_NAME) is required, got nothing"]);
  const lone = checkAgentFlags({ ...DEFAULTS, "webhook-cert-file": "/tls/tls.crt" });
  assert.ok(!lone.ok);
  assert.match(lone.problems[0], /--webhook-cert-file and --webhook-key-file go together/);
});

Deno.test("checkWebhookFlags() requires --cert and --key and a port in range", () => {
  const good = checkWebhookFlags({ cert: "/c.pem", key: "/k.pem", port: "9443", host: "0.0.0.0" });
  assert.ok(good.ok && good.flags.port === 9443);
  const bad = checkWebhookFlags({ port: "0", host: "0.0.0.0" });
  assert.ok(!bad.ok);
  assert.deepEqual(bad.problems, [
    "--cert is required (a PEM certificate file), got nothing",
    "--key is required (a PEM private key file), got nothing",
    '--port must be a whole number from 1 to 65535, got "0"',
  ]);
});

for (
  const [command, args, message] of [
    ["agent", ["--node", "n1", "--no-such-flag"], /agent: Unknown option '--no-such-flag'/],
    ["agent", ["--node", "N 1"], /--node \(or \$NODE_NAME\) must be a DNS subdomain/],
    ["webhook", ["--cert", "/nonexistent.pem", "--key", "/nonexistent.key"], /cannot read --cert/],
    ["webhook", ["--port", "abc"], /--cert is required/],
  ] as const
) {
  Deno.test(`\`kivebpf ${command} ${args.join(" ")}\` exits 2 with a clear message`, async () => {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../../mod.ts", import.meta.url).pathname, command, ...args],
      env: { NO_COLOR: "1", NODE_NAME: "" },
      stdout: "null",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stderr);
    assert.equal(code, 2, text);
    assert.match(text, message);
    assert.doesNotMatch(text, /\n\s+at /, "no stack trace");
  });
}
