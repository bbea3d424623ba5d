/**
 * The watches of a node agent: every KivePolicy, the pods of its node, the registration
 * ConfigMaps of its kernel, and (started only while this agent writes the policy-wide status)
 * every KiveNodeReport. Each event only schedules a reconcile; a policy update that changes
 * nothing the agent acts on (a status write) schedules none.
 *
 * @module
 */
import type { KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import { GROUP, NODE_REPORT_PLURAL, NODE_REPORT_VERSION, PLURAL } from "../api/mod.ts";
import { ResourceWatcher } from "../kube/mod.ts";
import type { NodeAgentOptions } from "./agent_options.ts";
import { describe } from "./describe.ts";
import { KERNEL_LABEL } from "./registrations.ts";

/** The agent's watch caches. */
export interface AgentWatches {
  policies: ResourceWatcher<KubernetesObject>;
  pods: ResourceWatcher<KubernetesObject>;
  peers: ResourceWatcher<KubernetesObject>;
  /** Every KiveNodeReport, for the agent that writes the policies' totals. */
  reports: ResourceWatcher<KubernetesObject>;
}

/**
 * What the agents act on in a policy: its spec (generation), its deletion and its finalizers.
 * A status write changes none of them, so it wakes no agent (the writer of the totals reads
 * the status from the cache, which every update refreshes).
 */
export function policySignature(object: KubernetesObject): string {
  const { metadata } = object;
  return JSON.stringify([metadata?.generation, metadata?.deletionTimestamp, metadata?.finalizers]);
}

/**
 * Creates (but does not start) the agent's watches.
 *
 * @param options The agent's node, namespace, kernel and clients.
 * @param onChange Called on every event of any watch.
 * @returns The watches.
 */
export function agentWatches(options: NodeAgentOptions, onChange: () => void): AgentWatches {
  const { kubeConfig, custom, core } = options.apis;
  const onError = (what: string) => (error: unknown) =>
    options.log.warn(`watch of ${what} failed; restarting`, { error: describe(error) });
  const policies = new ResourceWatcher(kubeConfig, {
    path: `/apis/${GROUP}/v2alpha1/${PLURAL}`,
    list: () =>
      custom.listClusterCustomObject({
        group: GROUP,
        version: "v2alpha1",
        plural: PLURAL,
      }) as Promise<
        KubernetesListObject<KubernetesObject>
      >,
    onChange,
    signature: policySignature,
    onError: onError("KivePolicies"),
    relistSeconds: options.relistSeconds,
  });
  const nodeSelector = `spec.nodeName=${options.nodeName}`;
  const pods = new ResourceWatcher(kubeConfig, {
    path: "/api/v1/pods",
    fieldSelector: nodeSelector,
    list: () => core.listPodForAllNamespaces({ fieldSelector: nodeSelector }),
    onChange,
    onError: onError("pods"),
    relistSeconds: options.relistSeconds,
  });
  const kernelSelector = `${KERNEL_LABEL}=${options.kernelId}`;
  const peers = new ResourceWatcher(kubeConfig, {
    path: `/api/v1/namespaces/${options.namespace}/configmaps`,
    labelSelector: kernelSelector,
    list: () =>
      core.listNamespacedConfigMap({ namespace: options.namespace, labelSelector: kernelSelector }),
    // The leader arms peers' registrations; followers read its armed set for status.
    onChange,
    onError: onError("registration ConfigMaps"),
    relistSeconds: options.relistSeconds,
  });
  const reports = new ResourceWatcher(kubeConfig, {
    path: `/apis/${GROUP}/${NODE_REPORT_VERSION}/${NODE_REPORT_PLURAL}`,
    list: () =>
      custom.listClusterCustomObject({
        group: GROUP,
        version: NODE_REPORT_VERSION,
        plural: NODE_REPORT_PLURAL,
      }) as Promise<KubernetesListObject<KubernetesObject>>,
    onChange,
    onError: onError("KiveNodeReports"),
    relistSeconds: options.relistSeconds,
  });
  return { policies, pods, peers, reports };
}
