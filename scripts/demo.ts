/**
 * The user journey of the seed's USAGE on a local single-node cluster, in one command:
 * bring the cluster up (or reuse it), install kivebpf, apply the sample policy and the sample
 * nginx pod, `kubectl exec nginx-pod -- cat /secret.txt`, print the KiveAlert; then the same
 * through the callback service, printing what the receiver got.
 *
 * Usage: `deno task demo` (and `deno task demo:down` to remove everything it started).
 *
 * @module
 */

import { type CommandOutput, runCommand } from "./_run.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const KUBECTL = `${ROOT}.cache/k8s/bin/kubectl`;
const KUBECONFIG = `${ROOT}.cache/cluster/kubeconfig`;
const NS = "kivebpf-system";

/** What a command printed. */
export type Output = CommandOutput;

/** Runs kubectl against the local cluster from the repository root, as users type it. */
export function kubectl(args: string[], stdin?: string): Promise<Output> {
  return runCommand(KUBECTL, args, { cwd: ROOT, env: { KUBECONFIG }, stdin });
}

/** Like {@linkcode kubectl}, failing with its stderr on a non-zero exit. */
export async function kubectlOk(args: string[], stdin?: string): Promise<string> {
  const out = await kubectl(args, stdin);
  if (out.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed: ${out.stderr.trim()}`);
  return out.stdout;
}

/** Polls until `probe` returns a value, or fails naming what it waited for. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  seconds = 180,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(`Timed out after ${seconds} s waiting for ${what}`, { cause: last });
}

function say(text: string): void {
  console.log(`\n==> ${text}`);
}

/** Runs scripts/cluster.sh with its output shown. */
export async function cluster(command: "up" | "down"): Promise<void> {
  const { code } = await new Deno.Command("bash", {
    args: [`${ROOT}scripts/cluster.sh`, command],
    cwd: ROOT,
    stdin: "null",
  }).output();
  if (code !== 0) throw new Error(`scripts/cluster.sh ${command} exited ${code}`);
}

/** Installs kivebpf and waits until its agents are Ready and its webhooks answer. */
export async function install(): Promise<void> {
  await kubectlOk(["apply", "-f", "manifests/install.yaml"]);
  await waitInstalled();
}

/** Waits until the agents run and serve the webhooks (however kivebpf was installed). */
export async function waitInstalled(): Promise<void> {
  await kubectlOk(["-n", NS, "rollout", "status", "daemonset/kivebpf-agent", "--timeout=300s"]);
  // The CRD's conversion and the validating webhook answer once the agents hold a certificate.
  await waitFor("the webhooks", async () => {
    const probe = await kubectl([
      "apply",
      "--dry-run=server",
      "-f",
      "config/samples/kive_v2alpha1_kivepolicy.yaml",
    ]);
    return probe.code === 0;
  });
}

/** KiveAlerts the agents printed since `since` (RFC 3339), parsed. */
export async function agentAlerts(since: string): Promise<Record<string, unknown>[]> {
  const out = await kubectlOk([
    "-n",
    NS,
    "logs",
    "-l",
    "app.kubernetes.io/component=agent",
    "--since-time",
    since,
    "--tail=-1",
  ]);
  return parseAlertLines(out);
}

/** KiveAlerts the callback receiver printed since `since`. */
export async function receiverAlerts(since: string): Promise<Record<string, unknown>[]> {
  const out = await kubectlOk([
    "-n",
    NS,
    "logs",
    "deploy/callback-service",
    "--since-time",
    since,
    "--tail=-1",
  ]);
  return parseAlertLines(out);
}

function parseAlertLines(text: string): Record<string, unknown>[] {
  return text.split("\n").flatMap((line) => {
    const start = line.indexOf("{");
    if (start < 0) return [];
    try {
      const parsed = JSON.parse(line.slice(start));
      return parsed.KiveAlert ? [parsed.KiveAlert] : [];
    } catch {
      return [];
    }
  });
}

/** Waits until the policy reports `armed` containers. */
export function waitArmed(policy: string, armed: number): Promise<boolean> {
  return waitFor(`KivePolicy ${policy} to have ${armed} container(s) armed`, async () => {
    const value = await kubectlOk([
      "-n",
      NS,
      "get",
      "kp",
      policy,
      "-o",
      "jsonpath={.status.armed}",
    ]);
    return Number(value || 0) === armed;
  });
}

/** An RFC 3339 timestamp one second back, for `kubectl logs --since-time`. */
export function now(): string {
  return new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, "Z");
}

async function main(): Promise<void> {
  if (Deno.args[0] === "down") {
    say("Removing the local cluster");
    await cluster("down");
    return;
  }
  say("Bringing up the local single-node cluster (scripts/cluster.sh up)");
  await cluster("up");
  say("kubectl apply -f manifests/install.yaml");
  await install();
  say("kubectl apply -f config/samples/kive_v2alpha1_kivepolicy.yaml");
  console.log(await kubectlOk(["apply", "-f", "config/samples/kive_v2alpha1_kivepolicy.yaml"]));
  say("kubectl apply -f hack/k8s-manifests/sample-nginx-pod.yaml");
  console.log(await kubectlOk(["apply", "-f", "hack/k8s-manifests/sample-nginx-pod.yaml"]));
  await kubectlOk(["wait", "--for=condition=Ready", "pod/nginx-pod", "--timeout=180s"]);
  await waitArmed("kive-sample-policy", 1);
  console.log(await kubectlOk(["-n", NS, "get", "kp", "-o", "wide"]));

  say("kubectl exec nginx-pod -- cat /secret.txt");
  let since = now();
  await kubectl(["exec", "nginx-pod", "--", "cat", "/secret.txt"]);
  const [alert] = await waitFor("the KiveAlert in the agent's log", async () => {
    const alerts = await agentAlerts(since);
    return alerts.length > 0 ? alerts : undefined;
  }, 60);
  console.log("Access Detected");
  console.log(JSON.stringify({ KiveAlert: alert }, null, 2));

  say("Switching the policy to the callback service (hack/k8s-manifests/callback-service.yaml)");
  await kubectlOk(["apply", "-f", "hack/k8s-manifests/callback-service.yaml"]);
  await kubectlOk(["-n", NS, "rollout", "status", "deploy/callback-service", "--timeout=180s"]);
  console.log(await kubectlOk(["apply", "-f", "config/samples/kive_v1_callback_kivepolicy.yaml"]));
  await new Promise((resolve) => setTimeout(resolve, 3000));
  say("kubectl exec nginx-pod -- cat /secret.txt");
  since = now();
  await kubectl(["exec", "nginx-pod", "--", "cat", "/secret.txt"]);
  const [received] = await waitFor("the alert at the callback receiver", async () => {
    const alerts = await receiverAlerts(since);
    return alerts.length > 0 ? alerts : undefined;
  }, 60);
  console.log("The callback receiver got:");
  console.log(JSON.stringify({ KiveAlert: received }, null, 2));
  say("Done. `deno task demo:down` removes the cluster.");
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`demo failed: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
