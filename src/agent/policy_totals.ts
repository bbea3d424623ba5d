/**
 * The policy-wide totals and conditions, written by one agent of the cluster at a time (the
 * holder of the webhook certificate Lease, or every agent where no webhook runs). Only that
 * agent watches the KiveNodeReports: the others never hear of another node's change. The
 * policy object changes only when its totals or conditions do, and at most once per interval
 * (2 s by default): while a thousand nodes converge, every agent's watch of the policies
 * carries one update per interval, not one per node.
 *
 * @module
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { KivePolicyV2, NodeReportBody } from "../api/mod.ts";
import type { ResourceWatcher } from "../kube/mod.ts";
import { describe } from "./describe.ts";
import type { Logger } from "./log.ts";
import type { PolicyStatusWriter } from "./policy_status.ts";

/** Keeps the report watch running while this agent writes the totals, and writes them. */
export class PolicyTotals {
  readonly #reports: ResourceWatcher<KubernetesObject>;
  readonly #writer: Pick<PolicyStatusWriter, "writeConditions">;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #later: (ms: number) => void;
  #watching = false;
  /** When each policy's status was last written, by uid. */
  readonly #written = new Map<string, number>();

  /**
   * @param reports The (not started) watch of every KiveNodeReport.
   * @param writer Writes the policies' status.
   * @param log Where a failed start of the watch is told.
   * @param options The least time between two writes of one policy's status, and how to ask
   *   for a pass once a held-back write is due.
   */
  constructor(
    reports: ResourceWatcher<KubernetesObject>,
    writer: Pick<PolicyStatusWriter, "writeConditions">,
    log: Logger,
    options: { intervalMs?: number; later?: (ms: number) => void } = {},
  ) {
    this.#reports = reports;
    this.#writer = writer;
    this.#log = log;
    this.#intervalMs = options.intervalMs ?? 2000;
    this.#later = options.later ?? (() => {});
  }

  /** Whether the report watch has its first list (totals are written only then). */
  get synced(): boolean {
    return this.#watching && this.#reports.synced;
  }

  /**
   * One pass: starts or stops the report watch as `writes` says, and once the watch has
   * synced writes every policy's totals and conditions.
   *
   * @param writes Whether this agent writes the policy-wide status now.
   * @param policies Every policy, valid or not.
   * @param invalid The problems of each invalid policy, by uid.
   */
  async pass(
    writes: boolean,
    policies: readonly KivePolicyV2[],
    invalid: ReadonlyMap<string, string>,
  ): Promise<void> {
    if (!writes) {
      if (this.#watching) {
        this.#watching = false;
        await this.#reports.stop();
      }
      return;
    }
    if (!this.#watching) {
      this.#watching = true;
      // Not awaited: the watch lists in the background (retrying), and the pass goes on.
      this.#reports.start().catch((error) =>
        this.#log.warn("cannot watch KiveNodeReports", { error: describe(error) })
      );
    }
    if (!this.#reports.synced) return;
    const now = Date.now();
    const due = (uid: string) => now - (this.#written.get(uid) ?? -Infinity) >= this.#intervalMs;
    const live = new Set(policies.map((p) => p.metadata.uid ?? ""));
    for (const uid of this.#written.keys()) if (!live.has(uid)) this.#written.delete(uid);
    const { written, held } = await this.#writer.writeConditions(
      policies,
      groupByPolicy(this.#reports.list()),
      invalid,
      due,
    );
    for (const uid of written) this.#written.set(uid, now);
    // A policy held back is written by the pass asked for when its interval ends.
    if (held.length > 0) {
      const next = Math.min(...held.map((uid) => this.#written.get(uid)! + this.#intervalMs));
      this.#later(Math.max(0, next - now));
    }
  }

  /** The reports of one policy from the watch cache (only meaningful once synced). */
  reportsOf(uid: string): NodeReportBody[] {
    return groupByPolicy(this.#reports.list()).get(uid) ?? [];
  }

  /** Stops the report watch. */
  async stop(): Promise<void> {
    if (this.#watching) await this.#reports.stop();
    this.#watching = false;
  }
}

/** Reports by the uid of their policy. */
export function groupByPolicy(
  objects: readonly KubernetesObject[],
): Map<string, NodeReportBody[]> {
  const byPolicy = new Map<string, NodeReportBody[]>();
  for (const object of objects as unknown as NodeReportBody[]) {
    const uid = object.policy?.uid;
    if (!uid) continue;
    const list = byPolicy.get(uid) ?? [];
    list.push(object);
    byPolicy.set(uid, list);
  }
  return byPolicy;
}
