/**
 * What the agent writes on KivePolicies: its node's entry of `status.nodes` (server-side apply
 * with a field manager per node, so agents never overwrite each other), the policy-wide
 * `status.armed` and `Ready` condition (one writer at a time), and the release of the
 * finalizer once no kernel can still report a deleted policy.
 *
 * @module
 */
import {
  type CoordinationV1Api,
  type CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { FINALIZER, GROUP, type KivePolicyV2, PLURAL } from "../api/mod.ts";
import { apiStatus, serverSideApplyOptions } from "../kube/mod.ts";
import type { Logger } from "./log.ts";
import type { nodeStatusEntries } from "./status.ts";
import { conditionsCurrent, policyConditions } from "./conditions.ts";

/** Field managers of the agent's server-side applies start with this. */
export const FIELD_MANAGER_PREFIX = "kivebpf-agent";

/** Status reason: the trap file is planted, but the kernel refused to arm its inode. */
export const REASON_ARM_FAILED = "ArmFailed";
export { REASON_BLOCK_NOT_ENFORCED } from "./conditions.ts";
/** Planted on a node whose kernel is led by another agent, which has not armed it (yet). */
export const REASON_NOT_ARMED_BY_LEADER = "NotArmedByLeader";
/** Planted, but no agent is known to lead this node's kernel. */
export const REASON_NO_KERNEL_LEADER = "NoKernelLeader";

/** Options of {@linkcode PolicyStatusWriter}. */
export interface PolicyStatusWriterOptions {
  nodeName: string;
  kernelId: string;
  /** Where the kernel Leases are. */
  namespace: string;
  custom: CustomObjectsApi;
  coordination: CoordinationV1Api;
  log: Logger;
  /** Describes an API error for the log. */
  describe: (error: unknown) => string;
}

/** Writes one node's share of the KivePolicy status, and the policy-wide parts. */
export class PolicyStatusWriter {
  readonly #o: PolicyStatusWriterOptions;
  /** The last status applied per policy uid, to skip applies that change nothing. */
  #applied = new Map<string, string>();

  /** @param options The node, the clients and the log. */
  constructor(options: PolicyStatusWriterOptions) {
    this.#o = options;
  }

  /**
   * Applies this node's entry of each policy's `status.nodes` (server-side apply with this
   * node's field manager), and an empty status where this node no longer reports; skips what
   * did not change since the last apply.
   *
   * @param entries This node's entry per policy uid (see nodeStatusEntries).
   * @param policies The live policies.
   * @param deleting The policies being deleted.
   */
  async writeNodeStatus(
    entries: ReturnType<typeof nodeStatusEntries>,
    policies: readonly KivePolicyV2[],
    deleting: readonly KivePolicyV2[],
  ): Promise<void> {
    const live = new Set(policies.map((p) => p.metadata.uid ?? ""));
    const targets = new Map<string, { namespace: string; name: string; status: unknown }>();
    for (const [uid, { policy, entry }] of entries) {
      if (live.has(uid)) {
        targets.set(uid, {
          namespace: policy.namespace,
          name: policy.name,
          status: { nodes: [entry] },
        });
      }
    }
    // Policies this node reported on before but no longer matches, or that are being deleted:
    // apply an empty status to drop this node's entry.
    for (const policy of [...policies, ...deleting]) {
      const uid = policy.metadata.uid ?? "";
      if (!targets.has(uid) && this.#applied.has(uid) || policy.metadata.deletionTimestamp) {
        if (!targets.has(uid)) {
          targets.set(uid, {
            namespace: policy.metadata.namespace ?? "",
            name: policy.metadata.name ?? "",
            status: undefined,
          });
        }
      }
    }
    for (const uid of this.#applied.keys()) {
      if (!live.has(uid) && !deleting.some((p) => p.metadata.uid === uid)) {
        this.#applied.delete(uid);
      }
    }
    for (const [uid, { namespace, name, status }] of targets) {
      const text = JSON.stringify(status ?? null);
      if (this.#applied.get(uid) === text) continue;
      const body: Record<string, unknown> = {
        apiVersion: `${GROUP}/v2alpha1`,
        kind: "KivePolicy",
        metadata: { name, namespace, uid },
      };
      if (status) body.status = status;
      try {
        await this.#applyStatus(
          namespace,
          name,
          body,
          `${FIELD_MANAGER_PREFIX}-${this.#o.nodeName}`,
        );
        this.#applied.set(uid, text);
      } catch (error) {
        if (apiStatus(error) === 404 || apiStatus(error) === 409) continue;
        this.#o.log.warn("cannot update KivePolicy status", {
          policy: `${namespace}/${name}`,
          error: this.#o.describe(error),
        });
      }
    }
  }

  /** Server-side applies a KivePolicy status with one field manager, taking over its fields. */
  async #applyStatus(
    namespace: string,
    name: string,
    body: Record<string, unknown>,
    fieldManager: string,
  ): Promise<void> {
    await this.#o.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: "v2alpha1",
        namespace,
        plural: PLURAL,
        name,
        body,
        fieldManager,
        force: true,
      },
      serverSideApplyOptions(),
    );
  }

  /**
   * Sums the nodes' entries into `status.armed` and the conditions (conditions.ts), applied
   * with a field manager of its own so it never touches the nodes' entries.
   *
   * @param policies Every policy, valid or not.
   * @param invalid The problems of each policy whose stored spec is refused, by uid.
   */
  async writeConditions(
    policies: readonly KivePolicyV2[],
    invalid: ReadonlyMap<string, string> = new Map(),
  ): Promise<void> {
    for (const policy of policies) {
      const next = policyConditions(policy, invalid.get(policy.metadata.uid ?? ""));
      if (conditionsCurrent(policy, next)) continue;
      try {
        const { name, namespace } = policy.metadata;
        await this.#applyStatus(namespace ?? "", name ?? "", {
          apiVersion: `${GROUP}/v2alpha1`,
          kind: "KivePolicy",
          metadata: { name, namespace },
          status: {
            armed: next.armed,
            observedGeneration: policy.metadata.generation,
            conditions: next.conditions,
          },
        }, `${FIELD_MANAGER_PREFIX}-conditions`);
      } catch (error) {
        if (apiStatus(error) !== 404) {
          this.#o.log.warn("cannot update KivePolicy conditions", {
            error: this.#o.describe(error),
          });
        }
      }
    }
  }

  /**
   * Whether no other node can still report the policy: each other node's status entry is on
   * this kernel, which this agent leads and has just disarmed, or on a kernel whose Lease has
   * expired. Such a kernel may still hold the trap in pinned programs; the agent that adopts
   * them disarms it at its first sync (the policy is gone), and until then its accesses have
   * no policy left to alert to.
   */
  async #othersDisarmed(policy: KivePolicyV2, leading: boolean): Promise<boolean> {
    for (const entry of policy.status?.nodes ?? []) {
      if (entry.node === this.#o.nodeName) continue;
      if (entry.kernelId === this.#o.kernelId && leading) continue;
      if (entry.kernelId && !(await this.#kernelLeaseLive(entry.kernelId))) continue;
      return false;
    }
    return true;
  }

  async #kernelLeaseLive(kernelId: string): Promise<boolean> {
    try {
      const lease = await this.#o.coordination.readNamespacedLease({
        name: `kivebpf-kernel-${kernelId}`,
        namespace: this.#o.namespace,
      });
      const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
      const duration = (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
      // Twice the duration: tolerate clock skew between nodes rather than release early.
      return Boolean(lease.spec?.holderIdentity) && Date.now() - renewed < 2 * duration;
    } catch (error) {
      return apiStatus(error) !== 404;
    }
  }

  /**
   * Removes our finalizer from a policy being deleted once no node reports traps for it any
   * more (each node drops its status entry after disarming).
   *
   * @param deleting The policies being deleted.
   * @param here The policies this node still has files planted for, and whether it leads.
   */
  async releaseFinalizers(
    deleting: readonly KivePolicyV2[],
    here: { plantedPolicies: ReadonlySet<string>; leading: boolean },
  ): Promise<void> {
    for (const policy of deleting) {
      const finalizers = policy.metadata.finalizers ?? [];
      if (!finalizers.includes(FINALIZER)) continue;
      const uid = policy.metadata.uid ?? "";
      if (here.plantedPolicies.has(uid)) continue;
      if (!(await this.#othersDisarmed(policy, here.leading))) continue;
      try {
        await this.#o.custom.patchNamespacedCustomObject(
          {
            group: GROUP,
            version: "v2alpha1",
            namespace: policy.metadata.namespace ?? "",
            plural: PLURAL,
            name: policy.metadata.name ?? "",
            body: [
              { op: "test", path: "/metadata/uid", value: uid },
              {
                op: "replace",
                path: "/metadata/finalizers",
                value: finalizers.filter((f) => f !== FINALIZER),
              },
            ],
          },
          setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
        );
        this.#o.log.info("policy disarmed; finalizer removed", {
          policy: `${policy.metadata.namespace}/${policy.metadata.name}`,
        });
      } catch (error) {
        if (apiStatus(error) !== 404 && apiStatus(error) !== 422) {
          this.#o.log.warn("cannot remove finalizer", { error: this.#o.describe(error) });
        }
      }
    }
  }
}
