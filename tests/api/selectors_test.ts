import assert from "node:assert/strict";
import { compileContainerName, compileIpSelector, parseIp } from "../../src/api/mod.ts";

Deno.test("compileContainerName() matches exact, regex and glob against the whole name", () => {
  const cases: [string, string, boolean][] = [
    ["nginx", "nginx", true],
    ["nginx", "nginx-sidecar", false],
    ["nginx", "my-nginx", false],
    ["regex:ngin.", "nginx", true],
    ["regex:ngin", "nginx", false],
    ["regex:db|cache", "cache", true],
    ["regex:db|cache", "dbx", false],
    ["regex:(postgres|mysql)-[0-9]+", "mysql-12", true],
    ["glob:web-*", "web-1", true],
    ["glob:web-*", "api-web-1", false],
    ["glob:w?b", "web", true],
    ["glob:w?b", "weeb", false],
    ["glob:[a-c]pp", "bpp", true],
    ["glob:[!a-c]pp", "bpp", false],
    ["glob:[!a-c]pp", "xpp", true],
    ["glob:a\\*b", "a*b", true],
    ["glob:a\\*b", "axb", false],
    ["glob:a.b", "axb", false],
    ["glob:*", "anything", true],
    ["glob:[]a]x", "]x", true],
    ["glob:[!]]x", "ax", true],
    ["glob:a[\\]b", "a\\b", true],
    ["glob:*-??", "web-01", true],
    ["regex:[a-z0-9]([-a-z0-9]*[a-z0-9])?", "web-1", true],
    ["regex:[a-z0-9]([-a-z0-9]*[a-z0-9])?", "web-", false],
  ];
  for (const [selector, name, expected] of cases) {
    assert.equal(compileContainerName(selector)(name), expected, `${selector} vs ${name}`);
  }
});

Deno.test("a container name crafted against a nested-quantifier selector is matched at once", () => {
  // "names made of words": with a backtracking RegExp one alert took 18.5 s.
  const words = compileContainerName("regex:([a-z]+-?)+");
  assert.equal(words(`${"a".repeat(32)}!`), false);
  assert.equal(words("web-front-end"), true);
  const globs = compileContainerName(`glob:${"*a".repeat(20)}b`);
  assert.equal(globs("a".repeat(63)), false);
  assert.equal(globs(`${"a".repeat(40)}b`), true);
});

Deno.test("compileContainerName() rejects patterns that do not compile", () => {
  assert.throws(() => compileContainerName("regex:("), SyntaxError);
  assert.throws(() => compileContainerName("glob:[abc"), /never closed/);
  assert.throws(() => compileContainerName("glob:abc\\"), /lone/);
});

Deno.test("parseIp() reads IPv4 and IPv6 forms", () => {
  assert.deepEqual(parseIp("10.0.0.7"), { family: 4, value: 0x0a000007n });
  assert.deepEqual(parseIp("::1"), { family: 6, value: 1n });
  assert.deepEqual(parseIp("fd00::7"), { family: 6, value: (0xfd00n << 112n) | 7n });
  assert.deepEqual(parseIp("::ffff:10.0.0.1"), {
    family: 6,
    value: (0xffffn << 32n) | 0x0a000001n,
  });
  for (const bad of ["10.0.0", "10.0.0.256", "01.2.3.4", "1::2::3", "1:2:3:4:5:6:7:8:9", "x", ""]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

Deno.test("compileIpSelector() matches addresses and CIDR blocks of the same family", () => {
  const cases: [string, string, boolean][] = [
    ["10.244.0.0/16", "10.244.3.9", true],
    ["10.244.0.0/16", "10.245.0.1", false],
    ["10.0.0.7", "10.0.0.7", true],
    ["10.0.0.7", "10.0.0.8", false],
    ["0.0.0.0/0", "192.168.1.1", true],
    ["fd00::/64", "fd00::abcd", true],
    ["fd00::/64", "fd01::1", false],
    ["fd00::/64", "10.0.0.1", false],
  ];
  for (const [selector, ip, expected] of cases) {
    assert.equal(compileIpSelector(selector)(ip), expected, `${selector} vs ${ip}`);
  }
  for (const bad of ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "x/8", "10.0.0.0/8/1"]) {
    assert.throws(() => compileIpSelector(bad), SyntaxError, bad);
  }
});
