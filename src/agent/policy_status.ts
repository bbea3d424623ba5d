/**
 * What the agent writes on KivePolicies: the policy-wide totals and conditions, summed from the
 * nodes' reports (one writer at a time), and the release of the finalizer once no kernel can
 * still report a deleted policy. Each node's own detail is its KiveNodeReport
 * (node_reports.ts).
 *
 * @module
 */
import {
  type CoordinationV1Api,
  type CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import {
  FINALIZER,
  GROUP,
  type KiveNodeReport,
  type KivePolicyV2,
  labelValueOf,
  NODE_REPORT_PLURAL,
  NODE_REPORT_VERSION,
  type NodeReportBody,
  PLURAL,
  POLICY_UID_LABEL,
} from "../api/mod.ts";
import { apiStatus, serverSideApplyOptions } from "../kube/mod.ts";
import type { Logger } from "./log.ts";
import { conditionsCurrent, policyConditions } from "./conditions.ts";
import { FIELD_MANAGER_PREFIX } from "./node_reports.ts";

export { FIELD_MANAGER_PREFIX } from "./node_reports.ts";

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

/** Writes the policy-wide status and releases finalizers. */
export class PolicyStatusWriter {
  readonly #o: PolicyStatusWriterOptions;

  /** @param options The node, the clients and the log. */
  constructor(options: PolicyStatusWriterOptions) {
    this.#o = options;
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
   * Sums the nodes' reports into the totals and the conditions (conditions.ts), applied with a
   * field manager of its own; skips policies whose status would not change.
   *
   * @param policies Every policy, valid or not.
   * @param reports The nodes' reports, by policy uid.
   * @param invalid The problems of each policy whose stored spec is refused, by uid.
   * @param due Whether a policy may be written now (see policy_totals.ts); all by default.
   * @returns The uids of the policies written, and of those whose write `due` held back.
   */
  async writeConditions(
    policies: readonly KivePolicyV2[],
    reports: ReadonlyMap<string, readonly NodeReportBody[]>,
    invalid: ReadonlyMap<string, string> = new Map(),
    due: (uid: string) => boolean = () => true,
  ): Promise<{ written: string[]; held: string[] }> {
    const written: string[] = [];
    const held: string[] = [];
    for (const policy of policies) {
      const uid = policy.metadata.uid ?? "";
      const next = policyConditions(policy, reports.get(uid) ?? [], invalid.get(uid));
      if (conditionsCurrent(policy, next)) continue;
      if (!due(uid)) {
        held.push(uid);
        continue;
      }
      try {
        const { name, namespace } = policy.metadata;
        await this.#applyStatus(namespace ?? "", name ?? "", {
          apiVersion: `${GROUP}/v2alpha1`,
          kind: "KivePolicy",
          metadata: { name, namespace },
          status: {
            armed: next.armed,
            notArmed: next.notArmed,
            nodeCount: next.nodeCount,
            observedGeneration: policy.metadata.generation,
            conditions: next.conditions,
          },
        }, `${FIELD_MANAGER_PREFIX}-conditions`);
        written.push(uid);
      } catch (error) {
        if (apiStatus(error) !== 404) {
          this.#o.log.warn("cannot update KivePolicy conditions", {
            error: this.#o.describe(error),
          });
        }
      }
    }
    return { written, held };
  }

  /**
   * Whether no other node can still report the policy: each other node's report is on this
   * kernel, which this agent leads and has just disarmed, or on a kernel whose Lease has
   * expired. Such a kernel may still hold the trap in pinned programs; the agent that adopts
   * them disarms it at its first sync (the policy is gone), and until then its accesses have
   * no policy left to alert to. A node drops its report once it has disarmed.
   */
  async #othersDisarmed(
    policy: KivePolicyV2,
    leading: boolean,
    reportsOf?: (uid: string) => readonly NodeReportBody[],
  ): Promise<boolean> {
    const reports = reportsOf
      ? reportsOf(policy.metadata.uid ?? "")
      : await this.#listReports(policy);
    if (reports === undefined) return false;
    for (const entry of reports) {
      if (entry.node === this.#o.nodeName) continue;
      if (entry.kernelId === this.#o.kernelId && leading) continue;
      if (entry.kernelId && !(await this.#kernelLeaseLive(entry.kernelId))) continue;
      return false;
    }
    return true;
  }

  /** The reports of one policy, read from the API server; undefined when that fails. */
  async #listReports(policy: KivePolicyV2): Promise<KiveNodeReport[] | undefined> {
    try {
      const list = await this.#o.custom.listNamespacedCustomObject({
        group: GROUP,
        version: NODE_REPORT_VERSION,
        namespace: policy.metadata.namespace ?? "",
        plural: NODE_REPORT_PLURAL,
        labelSelector: `${POLICY_UID_LABEL}=${labelValueOf(policy.metadata.uid ?? "")}`,
      }) as { items?: KiveNodeReport[] };
      return list.items ?? [];
    } catch (error) {
      this.#o.log.warn("cannot list the KiveNodeReports of a policy being deleted", {
        policy: `${policy.metadata.namespace}/${policy.metadata.name}`,
        error: this.#o.describe(error),
      });
      return undefined;
    }
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
   * more (each node deletes its report after disarming).
   *
   * @param deleting The policies being deleted.
   * @param here The policies this node still has files planted for, and whether it leads.
   * @param reportsOf The nodes' reports of a policy, from a watch cache; without it they are
   *   listed from the API server.
   */
  async releaseFinalizers(
    deleting: readonly KivePolicyV2[],
    here: { plantedPolicies: ReadonlySet<string>; leading: boolean },
    reportsOf?: (uid: string) => readonly NodeReportBody[],
  ): Promise<void> {
    for (const policy of deleting) {
      const finalizers = policy.metadata.finalizers ?? [];
      if (!finalizers.includes(FINALIZER)) continue;
      const uid = policy.metadata.uid ?? "";
      if (here.plantedPolicies.has(uid)) continue;
      if (!(await this.#othersDisarmed(policy, here.leading, reportsOf))) continue;
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
