/**
 * The three watches of a node agent: every KivePolicy, the pods of its node, and the
 * registration ConfigMaps of its kernel. Each event only schedules a reconcile.
 *
 * @module
 */
import type { KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import { GROUP, PLURAL } from "../api/mod.ts";
import { ResourceWatcher } from "../kube/mod.ts";
import type { NodeAgentOptions } from "./agent_options.ts";
import { describe } from "./describe.ts";
import { KERNEL_LABEL } from "./registrations.ts";

/** The agent's watch caches. */
export interface AgentWatches {
  policies: ResourceWatcher<KubernetesObject>;
  pods: ResourceWatcher<KubernetesObject>;
  peers: ResourceWatcher<KubernetesObject>;
}

/**
 * Creates (but does not start) the agent's watches.
 *
 * @param options The agent's node, namespace, kernel and clients.
 * @param onChange Called on every event of any watch.
 * @returns The three watches.
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
  return { policies, pods, peers };
}
