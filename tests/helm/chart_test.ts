/**
 * The Helm chart, with the real helm (scripts/build_helm.sh builds it): it lints, and its
 * defaults render exactly the objects of manifests/install.yaml (and of the cert-manager variant
 * with webhook.certManager.enabled), so `helm install` and `kubectl apply` install the same thing.
 */
import assert from "node:assert/strict";
import { parse, parseAllDocuments } from "yaml";
import { runCommand } from "../../scripts/_run.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** Both major versions users run: the chart must work with each. */
const HELMS = [["helm 4", `${ROOT}.cache/helm/bin/helm`], ["helm 3", `${ROOT}.cache/helm/v3/helm`]];

type Doc = {
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  // deno-lint-ignore no-explicit-any
  [key: string]: any;
};

function objects(text: string): Map<string, Doc> {
  const docs = parseAllDocuments(text).map((d) => d.toJSON() as Doc).filter((d) => d);
  return new Map(
    docs.map((d) => [`${d.kind}/${d.metadata.namespace ?? ""}/${d.metadata.name}`, d]),
  );
}

async function helmWith(binary: string, args: string[]): Promise<string> {
  const result = await runCommand(binary, args, { cwd: ROOT });
  assert.equal(result.code, 0, `helm ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

const templateWith = (binary: string, ...args: string[]) =>
  // The cluster's version as a real install would learn it (a helm built from source without
  // its release ldflags assumes Kubernetes 1.20, below the chart's kubeVersion).
  helmWith(binary, [
    "template",
    "kivebpf",
    "charts/kivebpf",
    "--include-crds",
    "--kube-version",
    "v1.34.12",
    ...args,
  ]).then(objects);
const template = (...args: string[]) => templateWith(HELMS[0][1], ...args);
const manifest = async (name: string) =>
  objects(await Deno.readTextFile(`${ROOT}manifests/${name}`));

for (const [name, binary] of HELMS) {
  Deno.test(`${name}: helm lint --strict accepts the chart`, async () => {
    assert.match(
      await helmWith(binary, ["lint", "--strict", "charts/kivebpf"]),
      /1 chart\(s\) linted, 0 chart\(s\) failed/,
    );
  });

  Deno.test(`${name}: the chart's defaults render exactly the objects of manifests/install.yaml`, async () => {
    const expected = await manifest("install.yaml");
    assert.deepEqual(await templateWith(binary), expected);
    // Installed into kivebpf-system with --create-namespace: the namespace is Helm's, not ours.
    const inNamespace = await templateWith(binary, "--namespace", "kivebpf-system");
    expected.delete("Namespace//kivebpf-system");
    assert.deepEqual(inNamespace, expected);
  });
}

Deno.test("webhook.certManager.enabled renders the cert-manager variant, but for the CRD annotation", async () => {
  const expected = await manifest("install-cert-manager.yaml");
  const rendered = await template("--set", "webhook.certManager.enabled=true");
  for (const [key, doc] of expected) {
    if (doc.kind === "CustomResourceDefinition") {
      // Helm never templates crds/: NOTES.txt and docs/USAGE.md give the annotate command.
      delete doc.metadata.annotations?.["cert-manager.io/inject-ca-from"];
      if (doc.metadata.annotations && Object.keys(doc.metadata.annotations).length === 0) {
        delete doc.metadata.annotations;
      }
    }
    assert.deepEqual(rendered.get(key), doc, key);
  }
  assert.deepEqual([...rendered.keys()].sort(), [...expected.keys()].sort());
});

Deno.test("the chart's values reach the agent's DaemonSet and the optional monitoring objects", async () => {
  const rendered = await template(
    "--set=image.repository=registry.example/kivebpf,image.tag=1.2.3,image.pullPolicy=Always",
    "--set=logLevel=debug,backend=tracepoint,leaseSeconds=30,output=json,metrics.port=9191",
    "--set=priorityClassName=system-node-critical,nodeSelector.role=edge,podAnnotations.team=sec",
    "--set=extraEnv[0].name=TZ,extraEnv[0].value=UTC,extraArgs[0]=--verify-seconds=30",
    "--set=resources.limits.memory=256Mi,tolerations=null",
    "--set=metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true",
  );
  const ds = rendered.get("DaemonSet/kivebpf-system/kivebpf-agent")!;
  const pod = ds.spec.template;
  const container = pod.spec.containers[0];
  assert.equal(container.image, "registry.example/kivebpf:1.2.3");
  assert.equal(container.imagePullPolicy, "Always");
  assert.deepEqual(container.args, [
    "agent",
    "--webhook-port=9443",
    "--metrics-port=9191",
    "--cgroup-root=/host/sys/fs/cgroup",
    "--log-level=debug",
    "--backend=tracepoint",
    "--lease-seconds=30",
    "--output=json",
    "--verify-seconds=30",
  ]);
  assert.deepEqual(container.env.at(-1), { name: "TZ", value: "UTC" });
  assert.equal(
    container.ports.find((p: { name: string }) => p.name === "metrics").containerPort,
    9191,
  );
  assert.equal(container.resources.limits.memory, "256Mi");
  assert.equal(pod.spec.priorityClassName, "system-node-critical");
  assert.deepEqual(pod.spec.nodeSelector, { role: "edge" });
  assert.equal(pod.spec.tolerations, undefined);
  assert.deepEqual(pod.metadata.annotations, { team: "sec" });
  const monitor = rendered.get("ServiceMonitor/kivebpf-system/kivebpf-agent")!;
  assert.equal(monitor.spec.endpoints[0].relabelings[0].replacement, "kivebpf-agent");
  const rule = rendered.get("PrometheusRule/kivebpf-system/kivebpf")!;
  const shipped = parse(await Deno.readTextFile(`${ROOT}manifests/prometheus/kivebpf-rules.yaml`));
  assert.deepEqual(rule.spec, shipped, "the PrometheusRule holds the shipped rules, untemplated");
});
