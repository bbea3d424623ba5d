/**
 * kivebpf installed the way most users will: `helm install` of charts/kivebpf on the real
 * cluster, the sample journey, a `helm upgrade` with a changed value (the agents roll and the
 * trap is armed again), and `helm uninstall`, after which nothing of ours is left but the CRDs
 * (Helm never deletes what crds/ installed). journey_test.ts then installs with kubectl.
 */
import assert from "node:assert/strict";
import {
  agentAlerts,
  kubectl,
  kubectlOk,
  now,
  waitArmed,
  waitFor,
  waitInstalled,
} from "../../scripts/demo.ts";
import { runCommand } from "../../scripts/_run.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const NS = "kivebpf-system";

async function helm(...args: string[]): Promise<string> {
  const result = await runCommand(`${ROOT}.cache/helm/bin/helm`, args, { cwd: ROOT });
  assert.equal(result.code, 0, `helm ${args.join(" ")}: ${result.stdout}${result.stderr}`);
  return result.stdout;
}

async function agentPods(): Promise<string[]> {
  const list = JSON.parse(
    await kubectlOk([
      "-n",
      NS,
      "get",
      "pods",
      "-l",
      "app.kubernetes.io/component=agent",
      "-o",
      "json",
    ]),
  );
  return list.items.map((p: { metadata: { name: string } }) => p.metadata.name).sort();
}

/** cat /secret.txt in the sample pod until the agents report it; the alert. */
async function alertOfCat(): Promise<Record<string, unknown>> {
  const [alert] = await waitFor("the alert of cat /secret.txt", async () => {
    const since = now();
    await kubectlOk(["exec", "nginx-pod", "--", "cat", "/secret.txt"]);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const found = await agentAlerts(since);
    return found.length > 0 ? found : undefined;
  }, 120);
  return alert;
}

Deno.test("helm install, the journey, helm upgrade re-arms, helm uninstall leaves nothing of ours", async () => {
  await helm("install", "kivebpf", "charts/kivebpf", "--wait", "--timeout", "5m");
  await waitInstalled();
  const status = JSON.parse(await helm("status", "kivebpf", "-o", "json"));
  assert.equal(status.info.status, "deployed");

  await kubectlOk(["apply", "-f", "config/samples/kive_v2alpha1_kivepolicy.yaml"]);
  await kubectlOk(["apply", "-f", "hack/k8s-manifests/sample-nginx-pod.yaml"]);
  await kubectlOk(["wait", "--for=condition=Ready", "pod/nginx-pod", "--timeout=180s"]);
  await waitArmed("kive-sample-policy", 1);
  const first = await alertOfCat();
  assert.equal(first["kive-policy-name"], "kive-sample-policy");

  // A changed value rolls the agents; the new ones arm the trap again and report.
  const before = await agentPods();
  await helm(
    "upgrade",
    "kivebpf",
    "charts/kivebpf",
    "--set",
    "logLevel=debug",
    "--wait",
    "--timeout",
    "5m",
  );
  await kubectlOk(["-n", NS, "rollout", "status", "daemonset/kivebpf-agent", "--timeout=300s"]);
  const after = await waitFor("the agents replaced", async () => {
    const pods = await agentPods();
    return pods.length === before.length && pods.every((p) => !before.includes(p))
      ? pods
      : undefined;
  }, 180);
  const ds = JSON.parse(
    await kubectlOk(["-n", NS, "get", "daemonset", "kivebpf-agent", "-o", "json"]),
  );
  assert.ok(ds.spec.template.spec.containers[0].args.includes("--log-level=debug"));
  assert.notDeepEqual(after, before);
  await waitArmed("kive-sample-policy", 1);
  const again = await alertOfCat();
  assert.equal((again.process as { binary: string }).binary, "cat");

  // Policies first, so the agents release their finalizers; then the release.
  await kubectlOk(["-n", NS, "delete", "kp", "--all", "--timeout=120s"]);
  await helm("uninstall", "kivebpf", "--wait", "--timeout", "5m");
  await waitFor(
    "namespace kivebpf-system gone",
    async () => (await kubectl(["get", "namespace", NS])).code !== 0,
    180,
  );
  for (
    const [kind, name] of [
      ["clusterrole", "kivebpf-agent"],
      ["clusterrolebinding", "kivebpf-agent"],
      ["validatingwebhookconfiguration", "kivepolicies.kivebpf.san7o.github.io"],
    ]
  ) {
    const left = await kubectl(["get", kind, name]);
    assert.notEqual(left.code, 0, `${kind}/${name} left behind`);
  }
  const releases = JSON.parse(await helm("list", "--all-namespaces", "-o", "json"));
  assert.deepEqual(releases, []);
  // Helm's rule: CRDs from crds/ stay (deleting them would delete every policy).
  const crd = await kubectl(["get", "crd", "kivepolicies.kivebpf.san7o.github.io"]);
  assert.equal(crd.code, 0);
});
