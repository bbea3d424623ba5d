/**
 * The desired state of one node: which trap of which policy belongs in which running container.
 * A pure function of the policies and the node's pods, so every reconcile, restart or missed
 * event computes the same set from the same input.
 *
 * @module
 */
import {
  compileContainerName,
  compileIpSelector,
  type KivePolicyV2,
  type Matcher,
  type MatchGroup,
  type TrapV2,
} from "../api/mod.ts";

/** The parts of a Pod the agent uses. */
export interface PodView {
  namespace: string;
  name: string;
  uid: string;
  labels: Record<string, string>;
  ips: string[];
  containers: ContainerView[];
}

/** One container of a pod, as its status reports it. */
export interface ContainerView {
  name: string;
  /** `containerd://<hex>`, `cri-o://<hex>`, ... ; empty before the runtime created it. */
  id: string;
  running: boolean;
}

/** Identifies a policy; uid distinguishes a recreated policy from the one it replaced. */
export interface PolicyRef {
  namespace: string;
  name: string;
  uid: string;
  generation: number;
}

/** One trap that belongs in one running container. */
export interface TrapTarget {
  /** Stable identity of this (policy, trap, container) for diffs. */
  key: string;
  policy: PolicyRef;
  alertVersion: string;
  trapIndex: number;
  trap: TrapV2;
  pod: { namespace: string; name: string; uid: string };
  container: { name: string; id: string };
}

/** A matching container the trap cannot be armed in, and why. */
export interface TrapProblem {
  policy: PolicyRef;
  trapIndex: number;
  path: string;
  pod: { namespace: string; name: string };
  container: string;
  reason: string;
  message: string;
}

/** The outcome of {@linkcode computeDesired}. */
export interface DesiredState {
  targets: TrapTarget[];
  problems: TrapProblem[];
}

interface CompiledGroup {
  pod?: string;
  namespace?: string;
  labels?: [string, string][];
  containerName?: Matcher;
  ip?: Matcher;
}

function compileGroup(group: MatchGroup): CompiledGroup {
  return {
    pod: group.pod,
    namespace: group.namespace,
    labels: group.matchLabels ? Object.entries(group.matchLabels) : undefined,
    containerName: group.containerName ? compileContainerName(group.containerName) : undefined,
    ip: group.ip ? compileIpSelector(group.ip) : undefined,
  };
}

function podMatches(group: CompiledGroup, pod: PodView): boolean {
  if (group.pod !== undefined && group.pod !== pod.name) return false;
  if (group.namespace !== undefined && group.namespace !== pod.namespace) return false;
  if (group.labels && !group.labels.every(([key, value]) => pod.labels[key] === value)) {
    return false;
  }
  if (group.ip && !pod.ips.some((ip) => group.ip!(ip))) return false;
  return true;
}

/**
 * Lists the trap targets of a node: `matchAny` groups are ORed, selectors in a group ANDed; a
 * group without `containerName` selects every container of a matching pod. Policies being
 * deleted select nothing. Containers that are not running are reported as problems.
 *
 * @param policies Every KivePolicy, as v2alpha1.
 * @param pods The pods scheduled on this node.
 * @returns Targets sorted by key, and problems.
 */
export function computeDesired(
  policies: readonly KivePolicyV2[],
  pods: readonly PodView[],
): DesiredState {
  const targets = new Map<string, TrapTarget>();
  const problems: TrapProblem[] = [];
  for (const policy of policies) {
    if (policy.metadata.deletionTimestamp) continue;
    const ref: PolicyRef = {
      namespace: policy.metadata.namespace ?? "",
      name: policy.metadata.name ?? "",
      uid: policy.metadata.uid ?? "",
      generation: policy.metadata.generation ?? 0,
    };
    policy.spec.traps.forEach((trap, trapIndex) => {
      const groups = trap.matchAny.map(compileGroup);
      for (const pod of pods) {
        const podGroups = groups.filter((group) => podMatches(group, pod));
        if (podGroups.length === 0) continue;
        for (const container of pod.containers) {
          if (!podGroups.some((g) => !g.containerName || g.containerName(container.name))) continue;
          if (!container.running || !container.id) {
            problems.push({
              policy: ref,
              trapIndex,
              path: trap.path,
              pod: { namespace: pod.namespace, name: pod.name },
              container: container.name,
              reason: "ContainerNotRunning",
              message: `container ${container.name} is not running`,
            });
            continue;
          }
          const key = `${ref.uid}/${trapIndex}/${pod.uid}/${container.name}/${container.id}`;
          targets.set(key, {
            key,
            policy: ref,
            alertVersion: policy.spec.alertVersion || "v1",
            trapIndex,
            trap,
            pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
            container: { name: container.name, id: container.id },
          });
        }
      }
    });
  }
  return {
    targets: [...targets.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
    problems,
  };
}

/** A Pod object as the API returns it, reduced to what {@linkcode podView} reads. */
export interface PodObject {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    deletionTimestamp?: unknown;
  };
  spec?: { nodeName?: string; containers?: { name: string }[] };
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: { ip: string }[];
    containerStatuses?: {
      name: string;
      containerID?: string;
      state?: { running?: unknown };
    }[];
  };
}

/**
 * Reduces a Pod to the fields matching uses. Containers without a status yet count as not
 * running.
 *
 * @param pod The Pod object.
 * @returns The view.
 */
export function podView(pod: PodObject): PodView {
  const statuses = new Map((pod.status?.containerStatuses ?? []).map((s) => [s.name, s]));
  const ips = (pod.status?.podIPs ?? []).map((entry) => entry.ip);
  if (ips.length === 0 && pod.status?.podIP) ips.push(pod.status.podIP);
  const finished = pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
  return {
    namespace: pod.metadata?.namespace ?? "",
    name: pod.metadata?.name ?? "",
    uid: pod.metadata?.uid ?? "",
    labels: pod.metadata?.labels ?? {},
    ips,
    containers: (pod.spec?.containers ?? []).map(({ name }) => {
      const status = statuses.get(name);
      return {
        name,
        id: status?.containerID ?? "",
        running: !finished && status?.state?.running !== undefined,
      };
    }),
  };
}
