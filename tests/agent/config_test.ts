import assert from "node:assert/strict";
import { checkAgentFlags, MAX_TRAPS_LIMIT } from "../../src/agent/config.ts";

const DEFAULTS = {
  backend: "auto",
  output: "text",
  "log-level": "info",
  "max-traps": "65536",
  "metrics-port": "9090",
  "webhook-port": "0",
  "lease-seconds": "15",
  "bpf-pin-dir": "/sys/fs/bpf/kivebpf",
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
