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
  compileLabelExpressions,
  type KivePolicyV2,
  type Matcher,
  type MatchGroup,
  type TrapV2,
} from "../api/mod.ts";

/** The parts of a Pod the agent uses. */
export interface PodView {
  /** The pod's namespace. */
  namespace: string;
  /** The pod's name. */
  name: string;
  /** The pod's uid; a re-created pod gets a new one. */
  uid: string;
  /** The pod's labels, for `matchLabels`. */
  labels: Record<string, string>;
  /** The pod's IPs, for `ip` selectors; empty before one is assigned. */
  ips: string[];
  /** Every container of the pod spec, running or not. */
  containers: ContainerView[];
}

/** One container of a pod, as its status reports it. */
export interface ContainerView {
  /** The container's name in the pod spec. */
  name: string;
  /** `containerd://<hex>`, `cri-o://<hex>`, ... ; empty before the runtime created it. */
  id: string;
  /** Whether the container is running now; traps are armed only in running ones. */
  running: boolean;
}

/** Identifies a policy; uid distinguishes a recreated policy from the one it replaced. */
export interface PolicyRef {
  /** The policy's namespace. */
  namespace: string;
  /** The policy's name. */
  name: string;
  /** The policy's uid. */
  uid: string;
  /** The generation of the spec the targets were computed from, for `observedGeneration`. */
  generation: number;
}

/** One trap that belongs in one running container. */
export interface TrapTarget {
  /** Stable identity of this (policy, trap, container) for diffs. */
  key: string;
  /** The policy the trap belongs to. */
  policy: PolicyRef;
  /** The alert format the policy asks for: `v1` or `v2alpha1`. */
  alertVersion: string;
  /** Position of the trap in the policy's `spec.traps`. */
  trapIndex: number;
  /** The trap as parsed, with defaults applied. */
  trap: TrapV2;
  /** The pod the container belongs to. */
  pod: { namespace: string; name: string; uid: string };
  /** The container to plant in; `id` as the runtime reports it. */
  container: { name: string; id: string };
}

/** A matching container the trap cannot be armed in, and why. */
export interface TrapProblem {
  /** The policy the trap belongs to. */
  policy: PolicyRef;
  /** Position of the trap in the policy's `spec.traps`. */
  trapIndex: number;
  /** The trap file's path. */
  path: string;
  /** The pod of the container. */
  pod: { namespace: string; name: string };
  /** The container's name. */
  container: string;
  /** A CamelCase reason for the status, such as `ContainerNotRunning`. */
  reason: string;
  /** What is wrong, for people. */
  message: string;
}

/** The outcome of {@linkcode computeDesired}. */
export interface DesiredState {
  /** Every trap that belongs in a running container, sorted by key. */
  targets: TrapTarget[];
  /** Matching containers the traps cannot be armed in, and why. */
  problems: TrapProblem[];
}

interface CompiledGroup {
  pod?: string;
  namespace?: string;
  labels?: [string, string][];
  expressions?: (labels: Readonly<Record<string, string>>) => boolean;
  containerName?: Matcher;
  ip?: Matcher;
}

function compileGroup(group: MatchGroup): CompiledGroup {
  return {
    pod: group.pod,
    namespace: group.namespace,
    labels: group.matchLabels ? Object.entries(group.matchLabels) : undefined,
    expressions: group.matchExpressions
      ? compileLabelExpressions(group.matchExpressions)
      : undefined,
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
  if (group.expressions && !group.expressions(pod.labels)) return false;
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
  /** Identity and labels; a set `deletionTimestamp` means the pod is going away. */
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    deletionTimestamp?: unknown;
  };
  /** The node it is scheduled on and its containers. */
  spec?: { nodeName?: string; containers?: { name: string }[] };
  /** Phase, IPs and the state and id of each container. */
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
