import assert from "node:assert/strict";
import { GROUP, type KivePolicyV2, validateSpec } from "../../src/api/mod.ts";
import { computeDesired, type PodView, podView } from "../../src/agent/desired.ts";

function policy(name: string, traps: unknown[], extra: Record<string, unknown> = {}): KivePolicyV2 {
  const checked = validateSpec("v2alpha1", { traps });
  if (!checked.ok) throw new Error(JSON.stringify(checked.problems));
  return {
    apiVersion: `${GROUP}/v2alpha1`,
    kind: "KivePolicy",
    metadata: { name, namespace: "kivebpf-system", uid: `uid-${name}`, generation: 1, ...extra },
    spec: checked.spec,
  };
}

function pod(
  name: string,
  namespace: string,
  labels: Record<string, string>,
  containers: [string, boolean][],
  ips = ["10.244.0.5"],
): PodView {
  return {
    name,
    namespace,
    uid: `pod-${name}`,
    labels,
    ips,
    containers: containers.map(([container, running], i) => ({
      name: container,
      id: running ? `containerd://${name}${i}` : "",
      running,
    })),
  };
}

const nginx = pod("nginx-pod", "default", { "security-level": "high" }, [["nginx", true], [
  "sidecar",
  true,
]]);
const other = pod("other", "default", { "security-level": "low" }, [["nginx", true]]);
const web = pod("web-7", "shop", { tier: "web" }, [["web-1", true], ["db-1", true]], ["10.1.2.3"]);
const pods = [nginx, other, web];

function targetsOf(traps: unknown[]): string[] {
  return computeDesired([policy("p", traps)], pods).targets.map((t) =>
    `${t.pod.name}/${t.container.name}`
  );
}

Deno.test("computeDesired() matches the seed's policy: pod, namespace and labels ANDed", () => {
  const traps = [{
    path: "/secret.txt",
    matchAny: [{
      pod: "nginx-pod",
      namespace: "default",
      matchLabels: { "security-level": "high" },
    }],
  }];
  assert.deepEqual(targetsOf(traps), ["nginx-pod/nginx", "nginx-pod/sidecar"]);
});

Deno.test("computeDesired() ORs groups and ANDs selectors within a group", () => {
  const cases: [unknown[], string[]][] = [
    [[{ namespace: "default", containerName: "nginx" }], ["nginx-pod/nginx", "other/nginx"]],
    [[{ pod: "other" }, { namespace: "shop", containerName: "glob:web-*" }], [
      "other/nginx",
      "web-7/web-1",
    ]],
    [[{ containerName: "regex:(web|db)-[0-9]" }], ["web-7/db-1", "web-7/web-1"]],
    [[{ containerName: "regex:web" }], []],
    [[{ ip: "10.1.0.0/16" }], ["web-7/db-1", "web-7/web-1"]],
    [[{ ip: "10.244.0.5" }], ["nginx-pod/nginx", "nginx-pod/sidecar", "other/nginx"]],
    [[{ matchLabels: { "security-level": "none" } }], []],
    [[{ namespace: "default", pod: "web-7" }], []],
  ];
  for (const [matchAny, expected] of cases) {
    assert.deepEqual(
      targetsOf([{ path: "/t", matchAny }]).sort(),
      expected,
      JSON.stringify(matchAny),
    );
  }
});

Deno.test("computeDesired() reports matching containers that are not running", () => {
  const stopped = pod("crashing", "default", {}, [["app", false]]);
  const result = computeDesired([policy("p", [{ path: "/t", matchAny: [{ pod: "crashing" }] }])], [
    stopped,
  ]);
  assert.deepEqual(result.targets, []);
  assert.equal(result.problems.length, 1);
  assert.equal(result.problems[0].reason, "ContainerNotRunning");
  assert.equal(result.problems[0].path, "/t");
});

Deno.test("computeDesired() ignores policies being deleted and keys targets by container id", () => {
  const deleting = policy("gone", [{ path: "/t", matchAny: [{ pod: "other" }] }], {
    deletionTimestamp: "2026-01-01T00:00:00Z",
  });
  assert.deepEqual(computeDesired([deleting], pods).targets, []);
  const live =
    computeDesired([policy("p", [{ path: "/t", matchAny: [{ pod: "other" }] }])], pods).targets;
  assert.equal(live[0].key, "uid-p/0/pod-other/nginx/containerd://other0");
});

Deno.test("computeDesired() is deterministic: same input, same output", () => {
  const traps = [{ path: "/a", matchAny: [{ namespace: "default" }] }, {
    path: "/b",
    matchAny: [{ namespace: "shop" }],
  }];
  const a = computeDesired([policy("p", traps), policy("q", traps)], pods);
  const b = computeDesired([policy("q", traps), policy("p", traps)], [...pods].reverse());
  assert.deepEqual(a.targets.map((t) => t.key), b.targets.map((t) => t.key));
});

Deno.test("podView() reads container ids, running state and IPs from the pod status", () => {
  const view = podView({
    metadata: { name: "n", namespace: "d", uid: "u", labels: { a: "b" } },
    spec: { containers: [{ name: "c1" }, { name: "c2" }, { name: "c3" }] },
    status: {
      phase: "Running",
      podIPs: [{ ip: "10.0.0.1" }, { ip: "fd00::1" }],
      containerStatuses: [
        { name: "c1", containerID: "containerd://abc", state: { running: {} } },
        { name: "c2", containerID: "containerd://def", state: {} },
      ],
    },
  });
  assert.deepEqual(view.ips, ["10.0.0.1", "fd00::1"]);
  assert.deepEqual(view.containers, [
    { name: "c1", id: "containerd://abc", running: true },
    { name: "c2", id: "containerd://def", running: false },
    { name: "c3", id: "", running: false },
  ]);
});

Deno.test("computeDesired() applies matchExpressions as Kubernetes does, ANDed with the group's other selectors", () => {
  const trap = (group: Record<string, unknown>) => [{ path: "/t", matchAny: [group] }];
  const expressions = (...list: unknown[]) => ({ matchExpressions: list });
  assert.deepEqual(
    targetsOf(trap(expressions({ key: "security-level", operator: "In", values: ["high"] }))),
    ["nginx-pod/nginx", "nginx-pod/sidecar"],
  );
  // NotIn also selects pods without the label; DoesNotExist only those.
  assert.deepEqual(
    targetsOf(trap(expressions({ key: "security-level", operator: "NotIn", values: ["low"] }))),
    ["nginx-pod/nginx", "nginx-pod/sidecar", "web-7/db-1", "web-7/web-1"],
  );
  assert.deepEqual(
    targetsOf(trap(expressions({ key: "security-level", operator: "DoesNotExist" }))),
    [
      "web-7/db-1",
      "web-7/web-1",
    ],
  );
  assert.deepEqual(targetsOf(trap(expressions({ key: "tier", operator: "Exists" }))), [
    "web-7/db-1",
    "web-7/web-1",
  ]);
  // An exclusion must narrow what the rest of the group selects, never widen it.
  assert.deepEqual(
    targetsOf(trap({
      namespace: "default",
      ...expressions({ key: "security-level", operator: "NotIn", values: ["low"] }),
    })),
    ["nginx-pod/nginx", "nginx-pod/sidecar"],
  );
  assert.deepEqual(
    targetsOf(trap({
      containerName: "nginx",
      ...expressions(
        { key: "security-level", operator: "Exists" },
        { key: "security-level", operator: "NotIn", values: ["high"] },
      ),
    })),
    ["other/nginx"],
  );
});
