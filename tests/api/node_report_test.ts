import assert from "node:assert/strict";
import { labelValueOf, nodeReportName } from "../../src/api/mod.ts";

/** Kubernetes' DNS-1123 subdomain rule for object names. */
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

Deno.test("nodeReportName() gives two (policy, node) pairs that read alike two names, all valid", () => {
  // Dots in both: "web" on "n1.example.com" and "web.n1" on "example.com" would both be
  // "web.n1.example.com" without the tag, and one report would overwrite the other.
  const a = nodeReportName("web", "n1.example.com");
  const b = nodeReportName("web.n1", "example.com");
  assert.notEqual(a, b);
  assert.match(a, /^web\.n1\.example\.com\.[0-9a-f]{8}$/);
  const long = [
    nodeReportName(`p${"x".repeat(240)}`, "node-1"),
    nodeReportName(`p${"x".repeat(240)}`, "node-2"),
    nodeReportName("p", `n${"y".repeat(252)}`),
  ];
  assert.equal(new Set(long).size, 3);
  for (const name of [a, b, ...long]) {
    assert.ok(name.length <= 253, `${name.length} characters`);
    assert.match(name, SUBDOMAIN);
  }
  assert.equal(nodeReportName("web", "n1"), nodeReportName("web", "n1"), "stable");
});

Deno.test("labelValueOf() keeps what fits a label and hashes what does not", () => {
  assert.equal(labelValueOf("node-a"), "node-a");
  assert.match(labelValueOf("n".repeat(64)), /^h-[0-9a-f]{16}$/);
  assert.match(labelValueOf("-leading-dash"), /^h-[0-9a-f]{16}$/);
  assert.notEqual(labelValueOf("n".repeat(64)), labelValueOf("n".repeat(65)));
});
