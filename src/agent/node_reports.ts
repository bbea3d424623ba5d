/**
 * This node's `KiveNodeReport`s: one per policy it has something to say about, server-side
 * applied with the node's own field manager, owned by the policy (deleting the policy deletes
 * them), and deleted when the node stops reporting on a policy. A report is written only when
 * it changed, and no other node watches it: a change here costs one small write, not a write
 * to a shared object that wakes every agent.
 *
 * @module
 */
import type { CustomObjectsApi } from "@kubernetes/client-node";
import {
  asLabelValue,
  GROUP,
  type KiveNodeReport,
  type KivePolicyV2,
  labelValueOf,
  NODE_LABEL,
  NODE_REPORT_KIND,
  NODE_REPORT_PLURAL,
  NODE_REPORT_VERSION,
  nodeReportName,
  POLICY_NAME_LABEL,
  POLICY_UID_LABEL,
} from "../api/mod.ts";
import { apiStatus, serverSideApplyOptions } from "../kube/mod.ts";
import type { Logger } from "./log.ts";
import type { PolicyRef } from "./desired.ts";
import type { NodeStatusEntry } from "./status.ts";

/** Field managers of the agent's server-side applies start with this. */
export const FIELD_MANAGER_PREFIX = "kivebpf-agent";

/** Options of {@linkcode NodeReportWriter}. */
export interface NodeReportWriterOptions {
  nodeName: string;
  custom: Pick<
    CustomObjectsApi,
    "patchNamespacedCustomObject" | "deleteNamespacedCustomObject" | "listClusterCustomObject"
  >;
  log: Logger;
  /** Describes an API error for the log. */
  describe: (error: unknown) => string;
}

/** Where a report lives, and what was last applied there. */
interface Written {
  namespace: string;
  name: string;
  /** The applied body as JSON; empty for a report found at start and not yet rewritten. */
  text: string;
}

/** Writes and deletes this node's reports. */
export class NodeReportWriter {
  readonly #o: NodeReportWriterOptions;
  /** By policy uid. */
  #written = new Map<string, Written>();
  #adopted = false;

  /** @param options The node, the client and the log. */
  constructor(options: NodeReportWriterOptions) {
    this.#o = options;
  }

  /**
   * Makes this node's reports equal to `entries`: applies what changed, deletes the reports of
   * policies it no longer reports on (no match left, or the policy is being deleted).
   *
   * @param entries This node's entry per policy uid (see nodeStatusEntries).
   * @param policies The live policies (reports of any other, deleted or being deleted, go).
   */
  async write(
    entries: ReadonlyMap<string, { policy: PolicyRef; entry: NodeStatusEntry }>,
    policies: readonly KivePolicyV2[],
  ): Promise<void> {
    if (!this.#adopted) await this.#adoptExisting();
    const live = new Set(policies.map((p) => p.metadata.uid ?? ""));
    for (const [uid, { policy, entry }] of entries) {
      if (!live.has(uid)) continue;
      const report = this.#report(policy, entry);
      const text = JSON.stringify(report);
      const before = this.#written.get(uid);
      if (before?.text === text) continue;
      try {
        await this.#o.custom.patchNamespacedCustomObject(
          {
            group: GROUP,
            version: NODE_REPORT_VERSION,
            namespace: policy.namespace,
            plural: NODE_REPORT_PLURAL,
            name: report.metadata.name!,
            body: report,
            fieldManager: `${FIELD_MANAGER_PREFIX}-${this.#o.nodeName}`,
            force: true,
          },
          serverSideApplyOptions(),
        );
        this.#written.set(uid, { namespace: policy.namespace, name: report.metadata.name!, text });
      } catch (error) {
        // The namespace or the policy went meanwhile: the next pass no longer reports it.
        if (apiStatus(error) === 404) continue;
        this.#o.log.warn("cannot write KiveNodeReport", {
          policy: `${policy.namespace}/${policy.name}`,
          error: this.#o.describe(error),
        });
      }
    }
    for (const [uid, written] of this.#written) {
      if (live.has(uid) && entries.has(uid)) continue;
      try {
        await this.#o.custom.deleteNamespacedCustomObject({
          group: GROUP,
          version: NODE_REPORT_VERSION,
          namespace: written.namespace,
          plural: NODE_REPORT_PLURAL,
          name: written.name,
        });
        this.#written.delete(uid);
      } catch (error) {
        if (apiStatus(error) === 404) {
          this.#written.delete(uid);
          continue;
        }
        this.#o.log.warn("cannot delete KiveNodeReport", {
          report: `${written.namespace}/${written.name}`,
          error: this.#o.describe(error),
        });
      }
    }
  }

  /** The report object of one policy. */
  #report(policy: PolicyRef, entry: NodeStatusEntry): KiveNodeReport {
    const labels: Record<string, string> = {
      [POLICY_UID_LABEL]: labelValueOf(policy.uid),
      [NODE_LABEL]: labelValueOf(this.#o.nodeName),
      "app.kubernetes.io/name": "kivebpf",
    };
    const policyLabel = asLabelValue(policy.name);
    if (policyLabel) labels[POLICY_NAME_LABEL] = policyLabel;
    return {
      apiVersion: `${GROUP}/${NODE_REPORT_VERSION}`,
      kind: NODE_REPORT_KIND,
      metadata: {
        name: nodeReportName(policy.name, this.#o.nodeName),
        namespace: policy.namespace,
        labels,
        ownerReferences: [{
          apiVersion: `${GROUP}/v2alpha1`,
          kind: "KivePolicy",
          name: policy.name,
          uid: policy.uid,
        }],
      },
      policy: { name: policy.name, uid: policy.uid, generation: entry.observedGeneration },
      node: entry.node,
      kernelId: entry.kernelId,
      ...(entry.backend ? { backend: entry.backend } : {}),
      armed: entry.armed,
      notArmed: entry.notArmed,
      ...(entry.decoysNotListed ? { decoysNotListed: entry.decoysNotListed } : {}),
      traps: entry.traps,
    };
  }

  /**
   * Learns the reports this node wrote before a restart, so that those it no longer has
   * anything to say about are deleted instead of left behind.
   */
  async #adoptExisting(): Promise<void> {
    try {
      const list = await this.#o.custom.listClusterCustomObject({
        group: GROUP,
        version: NODE_REPORT_VERSION,
        plural: NODE_REPORT_PLURAL,
        labelSelector: `${NODE_LABEL}=${labelValueOf(this.#o.nodeName)}`,
      }) as { items?: KiveNodeReport[] };
      for (const report of list.items ?? []) {
        if (report.node !== this.#o.nodeName || !report.policy?.uid) continue;
        this.#written.set(report.policy.uid, {
          namespace: report.metadata.namespace ?? "",
          name: report.metadata.name ?? "",
          text: "",
        });
      }
      this.#adopted = true;
    } catch (error) {
      this.#o.log.warn("cannot list this node's KiveNodeReports", {
        error: this.#o.describe(error),
      });
    }
  }
}
