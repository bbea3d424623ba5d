/**
 * Fixtures for agent tests without a kubelet: real runc containers, Pod objects in the real
 * API server that point at them (status written the way a kubelet writes it), and agent
 * processes run from mod.ts with their stdout and stderr captured.
 *
 * @module
 */
import type { RuncContainer } from "../containers/_runc.ts";
import type { TestKube } from "../_support/kube.ts";
import { waitFor } from "../_support/wait.ts";

export { waitFor };

const ROOT = new URL("../../", import.meta.url).pathname;

/** Makes sure a namespace and its default ServiceAccount exist (no controller-manager here). */
export async function ensureNamespace(kube: TestKube, name: string): Promise<void> {
  const ns = await kube.request("POST", "/api/v1/namespaces", { metadata: { name } });
  if (ns.status !== 201 && ns.status !== 409) throw new Error(JSON.stringify(ns.body));
  const sa = await kube.request("POST", `/api/v1/namespaces/${name}/serviceaccounts`, {
    metadata: { name: "default" },
  });
  if (sa.status !== 201 && sa.status !== 409) throw new Error(JSON.stringify(sa.body));
}

/** A Pod object whose single container is a real runc container. */
export interface TestPod {
  name: string;
  namespace: string;
  uid: string;
  container: RuncContainer;
  containerName: string;
}

/** Creates a Pod bound to `node` and reports `container` as its running container. */
export async function createPod(
  kube: TestKube,
  options: {
    name: string;
    namespace: string;
    node: string;
    labels?: Record<string, string>;
    containerName: string;
    container: RuncContainer;
    ip?: string;
  },
): Promise<TestPod> {
  const created = await kube.ok("POST", `/api/v1/namespaces/${options.namespace}/pods`, {
    metadata: { name: options.name, labels: options.labels ?? {} },
    spec: {
      nodeName: options.node,
      automountServiceAccountToken: false,
      containers: [{ name: options.containerName, image: "busybox:local" }],
    },
  });
  const pod: TestPod = {
    name: options.name,
    namespace: options.namespace,
    uid: created.metadata.uid,
    container: options.container,
    containerName: options.containerName,
  };
  await setPodContainer(kube, pod, options.container, options.ip ?? "10.244.0.10");
  return pod;
}

/** Writes the pod's status as a kubelet would after (re)starting its container. */
export async function setPodContainer(
  kube: TestKube,
  pod: TestPod,
  container: RuncContainer,
  ip = "10.244.0.10",
  restartCount = 0,
): Promise<void> {
  pod.container = container;
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  await kube.ok("PATCH", `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}/status`, {
    status: {
      phase: "Running",
      podIP: ip,
      podIPs: [{ ip }],
      conditions: [{ type: "Ready", status: "True", lastTransitionTime: now }],
      containerStatuses: [{
        name: pod.containerName,
        containerID: `containerd://${container.id}`,
        image: "busybox:local",
        imageID: "sha256:0",
        ready: true,
        started: true,
        restartCount,
        state: { running: { startedAt: now } },
      }],
    },
  }, "application/strategic-merge-patch+json");
}

/** An agent process run from mod.ts. */
export class AgentProcess implements AsyncDisposable {
  /**
   * `--bpf-pin-dir` of the agents started from now on: "" runs them unpinned (the default
   * here, so that an agent never touches the host's /sys/fs/bpf); the integration fixture
   * points it at a bpffs of its own.
   */
  static pinDir = "";
  readonly node: string;
  readonly stdoutLines: string[] = [];
  /** When each stdout line arrived (Date.now()), for delivery delays. */
  readonly stdoutAt: number[] = [];
  readonly stderrLines: string[] = [];
  #child: Deno.ChildProcess;
  #pumps: Promise<void>;
  #done = false;

  constructor(node: string, extraArgs: string[] = []) {
    this.node = node;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}mod.ts`,
        "agent",
        "--node",
        node,
        "--namespace",
        "kivebpf-system",
        "--metrics-port",
        "0",
        "--output",
        "json",
        "--lease-seconds",
        "6",
        "--bpf-pin-dir",
        AgentProcess.pinDir,
        ...(Deno.env.get("KIVEBPF_TEST_VERBOSE") === "1" ? ["--log-level", "debug"] : []),
        ...extraArgs,
      ],
      env: { KUBECONFIG: Deno.env.get("KUBECONFIG") ?? "" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pump = async (stream: ReadableStream<Uint8Array>, lines: string[], echo: boolean) => {
      let buffer = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        let newline;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          lines.push(line);
          if (lines === this.stdoutLines) this.stdoutAt.push(Date.now());
          if (echo) console.error(`[agent ${node}] ${line}`);
        }
      }
    };
    this.#pumps = Promise.all([
      pump(this.#child.stdout, this.stdoutLines, false),
      pump(this.#child.stderr, this.stderrLines, Deno.env.get("KIVEBPF_TEST_VERBOSE") === "1"),
    ]).then(() => {});
  }

  /** Alerts printed so far (`--output json` lines that carry a KiveAlert). */
  alerts(): Record<string, unknown>[] {
    return this.timedAlerts().map((a) => a.alert);
  }

  /** Alerts printed so far with the time each arrived. */
  timedAlerts(): { alert: Record<string, unknown>; at: number }[] {
    return this.stdoutLines.flatMap((line, i) => {
      try {
        const parsed = JSON.parse(line);
        return parsed.KiveAlert ? [{ alert: parsed.KiveAlert, at: this.stdoutAt[i] }] : [];
      } catch {
        return [];
      }
    });
  }

  /** True once the log says this agent leads its kernel. */
  leading(): boolean {
    const lead = this.stderrLines.findLastIndex((l) => l.includes("leading kernel"));
    const lost = this.stderrLines.findLastIndex((l) => l.includes("stopped leading kernel"));
    return lead >= 0 && lead > lost;
  }

  /** Stops the agent: SIGTERM (graceful, releases the Lease) or SIGKILL (a crash). */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#child.kill(signal);
    } catch {
      // already exited
    }
    await this.#child.status;
    await this.#pumps;
  }

  /** The log, for assertion messages. */
  log(): string {
    return this.stderrLines.slice(-40).join("\n");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
