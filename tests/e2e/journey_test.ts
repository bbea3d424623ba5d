/**
 * The seed's user journey on a real single-node cluster (kubelet, containerd, CoreDNS,
 * kube-proxy) brought up by scripts/cluster.sh, with kivebpf installed from
 * manifests/install.yaml the way users install it.
 */
import assert from "node:assert/strict";
import {
  agentAlerts,
  install,
  kubectl,
  kubectlOk,
  now,
  receiverAlerts,
  waitArmed,
  waitFor,
} from "../../scripts/demo.ts";
import { runCommand } from "../../scripts/_run.ts";

const NS = "kivebpf-system";
const ROOT = new URL("../../", import.meta.url).pathname;

async function podJson(name: string) {
  return JSON.parse(await kubectlOk(["get", "pod", name, "-o", "json"]));
}

async function catSecret(): Promise<string> {
  const since = now();
  await kubectlOk(["exec", "nginx-pod", "--", "cat", "/secret.txt"]);
  return since;
}

/** Waits a moment and checks that no alert arrived since `since`. */
async function assertNoAlert(since: string, why: string): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 5000));
  assert.deepEqual(await agentAlerts(since), [], why);
}

Deno.test("install succeeds and the agent pods become Ready", async () => {
  await install();
  const ds = JSON.parse(
    await kubectlOk(["-n", NS, "get", "daemonset", "kivebpf-agent", "-o", "json"]),
  );
  assert.ok(ds.status.numberReady >= 1);
  assert.equal(ds.status.numberReady, ds.status.desiredNumberScheduled);
});

Deno.test("the sample policy is accepted through v1 and v2alpha1", async () => {
  const v1 = await kubectl(["apply", "-f", "config/samples/kive_v2alpha1_kivepolicy.yaml"]);
  assert.equal(v1.code, 0, v1.stderr);
  const asV2 = JSON.parse(
    await kubectlOk([
      "-n",
      NS,
      "get",
      "kivepolicies.v2alpha1.kivebpf.san7o.github.io",
      "kive-sample-policy",
      "-o",
      "json",
    ]),
  );
  assert.equal(asV2.apiVersion, "kivebpf.san7o.github.io/v2alpha1");
  delete asV2.metadata.resourceVersion;
  delete asV2.status;
  const v2 = await kubectl(["apply", "-f", "-"], JSON.stringify(asV2));
  assert.equal(v2.code, 0, v2.stderr);
});

Deno.test("the nginx pod gets /secret.txt r--r--r--, and cat gives one alert matching the pod and the command", async () => {
  await kubectlOk(["apply", "-f", "hack/k8s-manifests/sample-nginx-pod.yaml"]);
  await kubectlOk(["wait", "--for=condition=Ready", "pod/nginx-pod", "--timeout=180s"]);
  await waitArmed("kive-sample-policy", 1);
  // The node's detail is its KiveNodeReport, written under the install manifest's RBAC.
  const node = (await podJson("nginx-pod")).spec.nodeName;
  const report = await waitFor("the node's KiveNodeReport", async () => {
    const listed = await kubectl([
      "-n",
      NS,
      "get",
      "knr",
      "-l",
      "kivebpf.san7o.github.io/policy=kive-sample-policy",
      "-o",
      "json",
    ]);
    // deno-lint-ignore no-explicit-any
    const items = listed.code === 0 ? JSON.parse(listed.stdout).items as any[] : [];
    return items.find((r) => r.node === node && r.armed === 1);
  }, 60);
  assert.equal(report.traps[0].path, "/secret.txt");
  const mode = await kubectlOk(["exec", "nginx-pod", "--", "stat", "-c", "%A", "/secret.txt"]);
  assert.equal(mode.trim(), "-r--r--r--");
  const inode = Number(
    (await kubectlOk(["exec", "nginx-pod", "--", "stat", "-c", "%i", "/secret.txt"])).trim(),
  );
  const since = await catSecret();
  const alerts = await waitFor("the alert", async () => {
    const found = await agentAlerts(since);
    return found.length > 0 ? found : undefined;
  }, 60);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const all = await agentAlerts(since);
  assert.equal(all.length, 1, `exactly one alert: ${JSON.stringify(all)}`);
  const [alert] = alerts;
  const pod = await podJson("nginx-pod");
  assert.equal(alert["kive-policy-name"], "kive-sample-policy");
  assert.deepEqual(alert.metadata, {
    path: "/secret.txt",
    inode,
    mask: 36,
    "kernel-id": (alert.metadata as { "kernel-id": string })["kernel-id"],
  });
  assert.match((alert.metadata as { "kernel-id": string })["kernel-id"], /^[0-9a-f-]{36}$/);
  assert.deepEqual(alert.pod, {
    name: "nginx-pod",
    namespace: "default",
    container: { id: pod.status.containerStatuses[0].containerID, name: "nginx" },
  });
  assert.deepEqual(alert.node, { name: pod.spec.nodeName });
  const process = alert.process as Record<string, unknown>;
  assert.equal(process.binary, "cat");
  assert.equal(process.arguments, "/secret.txt");
  assert.equal(process.cwd, "/");
  assert.equal(process.uid, 0);
  assert.deepEqual(alert["custom-metadata"], { severity: "medium" });
});

Deno.test("kubectl kivebpf status and alerts (the plugin) show the armed trap and the access", async () => {
  const plugin = (...args: string[]) =>
    runCommand("kubectl", ["kivebpf", ...args], {
      env: { PATH: `${ROOT}scripts:${ROOT}.cache/k8s/bin:${Deno.env.get("PATH")}` },
    });
  const status = await plugin("status", "kive-sample-policy");
  assert.equal(status.code, 0, status.stderr);
  assert.match(
    status.stdout,
    /^kivebpf-system\/kive-sample-policy: 1 armed, 0 not armed Ready=True/,
  );
  assert.match(status.stdout, /trap 0 \/secret\.txt: 1 armed/);

  // Follow: started first, then an access; the alert arrives on the stream.
  const follow = new Deno.Command(`${ROOT}scripts/kubectl-kivebpf`, {
    args: ["alerts", "-f", "--since", "1s", "--pod", "nginx-pod", "-o", "json"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = follow.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await kubectlOk(["exec", "nginx-pod", "--", "cat", "/secret.txt"]);
    const { value } = await reader.read();
    const followed = JSON.parse(value!.split("\n")[0]);
    assert.equal(followed.pod.name, "nginx-pod");
    assert.equal(followed.process.binary, "cat");
  } finally {
    follow.kill("SIGTERM");
    await reader.cancel().catch(() => {});
    await follow.status;
  }

  const listed = await plugin("alerts", "--since", "10m", "--pod", "nginx-pod", "-o", "json");
  assert.equal(listed.code, 0, listed.stderr);
  const alerts = listed.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.ok(alerts.length >= 2, `the accesses so far: ${listed.stdout}`);
  assert.ok(
    alerts.every((a) =>
      a.pod.name === "nginx-pod" && a["kive-policy-name"] === "kive-sample-policy"
    ),
  );
  const pretty = await plugin(
    "alerts",
    "--since",
    "10m",
    "--policy",
    "kivebpf-system/kive-sample-policy",
  );
  assert.match(
    pretty.stdout,
    /default\/nginx-pod \(nginx\) on \S+: cat \/secret\.txt \(pid \d+, uid 0\) opened \/secret\.txt/,
  );
  const none = await plugin("alerts", "--since", "10m", "--pod", "no-such-pod");
  assert.equal(none.stdout, "");
});

Deno.test("with a callback, the receiver gets the alert and stdout does not", async () => {
  await kubectlOk(["apply", "-f", "hack/k8s-manifests/callback-service.yaml"]);
  await kubectlOk(["-n", NS, "rollout", "status", "deploy/callback-service", "--timeout=180s"]);
  await kubectlOk(["apply", "-f", "config/samples/kive_v1_callback_kivepolicy.yaml"]);
  // The policy edit reaches the agent through its watch; retry the access until it is routed.
  let since = "";
  const [received] = await waitFor("the alert at callback-service", async () => {
    since = await catSecret();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const found = await receiverAlerts(since);
    return found.length > 0 ? found : undefined;
  }, 120);
  assert.equal(received["kive-policy-name"], "kive-sample-policy");
  assert.equal((received.process as { binary: string }).binary, "cat");
  assert.deepEqual(await agentAlerts(since), [], "no stdout alert when a callback is set");
});

Deno.test("deleting the policy disarms; a second cat gives no alert", async () => {
  await kubectlOk(["-n", NS, "delete", "kp", "kive-sample-policy", "--timeout=60s"]);
  const since = await catSecret();
  await assertNoAlert(since, "deleted policy is disarmed");
});

Deno.test("deleting and recreating the pod re-arms it", async () => {
  await kubectlOk(["apply", "-f", "config/samples/kive_v2alpha1_kivepolicy.yaml"]);
  await kubectlOk(["delete", "pod", "nginx-pod", "--wait=true", "--timeout=120s"]);
  await kubectlOk(["apply", "-f", "hack/k8s-manifests/sample-nginx-pod.yaml"]);
  await kubectlOk(["wait", "--for=condition=Ready", "pod/nginx-pod", "--timeout=180s"]);
  await waitArmed("kive-sample-policy", 1);
  const since = await catSecret();
  const alerts = await waitFor("the alert after re-creation", async () => {
    const found = await agentAlerts(since);
    return found.length > 0 ? found : undefined;
  }, 60);
  const pod = await podJson("nginx-pod");
  assert.equal(
    (alerts[0].pod as { container: { id: string } }).container.id,
    pod.status.containerStatuses[0].containerID,
  );
});

Deno.test("a policy whose label selector matches nothing arms nothing", async () => {
  const policy = {
    apiVersion: "kivebpf.san7o.github.io/v1",
    kind: "KivePolicy",
    metadata: { name: "matches-nothing", namespace: NS },
    spec: {
      traps: [{
        path: "/nothing.txt",
        create: true,
        matchAny: [{ matchLabels: { "no-such": "label" } }],
      }],
    },
  };
  await kubectlOk(["apply", "-f", "-"], JSON.stringify(policy));
  const reason = await waitFor("the Ready condition", async () => {
    const text = await kubectlOk([
      "-n",
      NS,
      "get",
      "kp",
      "matches-nothing",
      "-o",
      'jsonpath={.status.conditions[?(@.type=="Ready")].reason}',
    ]);
    return text || undefined;
  }, 60);
  assert.equal(reason, "NoMatch");
  const exists = await kubectl(["exec", "nginx-pod", "--", "stat", "/nothing.txt"]);
  assert.notEqual(exists.code, 0, "no file planted anywhere");
  await kubectlOk(["-n", NS, "delete", "kp", "matches-nothing"]);
});

Deno.test("the decoy sample plants generated credentials whose decoy id the report lists and the alert carries", async () => {
  await kubectlOk(["apply", "-f", "config/samples/kive_v2alpha1_decoys_kivepolicy.yaml"]);
  // Three of its traps match the sample pod's label security-level=high.
  await waitArmed("decoy-credentials", 3);
  const decoys = await waitFor("the decoys in the node's report", async () => {
    const reports = JSON.parse(
      await kubectlOk([
        "-n",
        NS,
        "get",
        "knr",
        "-l",
        "kivebpf.san7o.github.io/policy=decoy-credentials",
        "-o",
        "json",
      ]),
    );
    const listed = reports.items.flatMap((report: { traps: { path: string; decoys?: [] }[] }) =>
      report.traps.flatMap((trap) =>
        (trap.decoys ?? []).map((d: object) => ({ ...d, path: trap.path }))
      )
    );
    return listed.length === 3 ? listed : undefined;
  }, 60);
  const aws = decoys.find((d: { path: string }) => d.path === "/root/.aws/credentials");
  assert.equal(aws.pod, "nginx-pod");
  assert.match(aws.id, /^[A-Z2-7]{16}$/);
  const since = now();
  const text = await kubectlOk(["exec", "nginx-pod", "--", "cat", "/root/.aws/credentials"]);
  assert.match(text, new RegExp(`^\\[default\\]\naws_access_key_id = AKIA${aws.id}\n`));
  const [alert] = await waitFor("the decoy's alert", async () => {
    const found = (await agentAlerts(since)).filter((a) =>
      (a.metadata as { path: string }).path === "/root/.aws/credentials"
    );
    return found.length > 0 ? found : undefined;
  }, 60);
  assert.deepEqual(alert.decoy, { id: aws.id, kind: "aws-credentials" });
  const env = await kubectlOk(["exec", "nginx-pod", "--", "cat", "/app/.env"]);
  assert.match(
    env,
    /^DATABASE_URL=postgres:\/\/app_[a-z2-7]{16}:\S+@orders-db\.internal:5432\/orders$/m,
  );
  await kubectlOk(["-n", NS, "delete", "kp", "decoy-credentials", "--timeout=60s"]);
});
