/**
 * What one node reports on each policy (its `KiveNodeReport`): per trap, the containers armed,
 * the reasons others are not, and what containers did to the files. Each node writes only its
 * own reports.
 *
 * @module
 */
import type { PolicyRef, TrapProblem, TrapTarget } from "./desired.ts";
import { REASON_BLOCK_NOT_ENFORCED } from "./conditions.ts";
import type { TrapChange } from "./trap_changes.ts";
import { MAX_DECOYS_LISTED, MAX_DECOYS_PER_REPORT } from "../api/status_schema.ts";

/** The outcome of planting one target. */
export type PlantOutcome =
  | { target: TrapTarget; ok: true; decoy?: { id: string; kind: string } }
  | { target: TrapTarget; ok: false; reason: string; message: string };

/** One node's status entry for one policy. */
export interface NodeStatusEntry {
  node: string;
  kernelId: string;
  backend?: string;
  observedGeneration: number;
  armed: number;
  /** Matching containers where a trap is not armed (all of them; `problems` lists 32 per trap). */
  notArmed: number;
  /** Decoys armed but left out of `traps[].decoys`, past the bounds. */
  decoysNotListed?: number;
  traps: {
    index: number;
    path: string;
    armed: number;
    problems?: {
      pod: string;
      namespace: string;
      container?: string;
      reason: string;
      message?: string;
    }[];
    changes?: {
      pod: string;
      namespace: string;
      container: string;
      kind: string;
      message: string;
      time: string;
    }[];
    decoys?: { pod: string; namespace: string; container: string; id: string; kind: string }[];
  }[];
}

const MAX_PROBLEMS = 32;
/** Changes listed per trap and node (the newest). */
const MAX_CHANGES = 16;

/**
 * Builds the node's status entry for every policy it has something to say about.
 *
 * @param node This node's name.
 * @param kernelId The kernel's boot id.
 * @param backend The active backend, when this agent leads its kernel.
 * @param outcomes What planting did.
 * @param problems Matching containers that are not running.
 * @param changes What containers did to their trap files (see trap_changes.ts).
 * @returns Entries keyed by policy uid, with the policy they belong to.
 */
export function nodeStatusEntries(
  node: string,
  kernelId: string,
  backend: string | undefined,
  outcomes: readonly PlantOutcome[],
  problems: readonly TrapProblem[],
  changes: readonly { target: TrapTarget; change: TrapChange }[] = [],
): Map<string, { policy: PolicyRef; entry: NodeStatusEntry }> {
  const result = new Map<string, { policy: PolicyRef; entry: NodeStatusEntry }>();
  const entryFor = (policy: PolicyRef) => {
    let item = result.get(policy.uid);
    if (!item) {
      item = {
        policy,
        entry: {
          node,
          kernelId,
          backend,
          observedGeneration: policy.generation,
          armed: 0,
          notArmed: 0,
          traps: [],
        },
      };
      result.set(policy.uid, item);
    }
    return item.entry;
  };
  const trapFor = (entry: NodeStatusEntry, index: number, path: string) => {
    let trap = entry.traps.find((t) => t.index === index);
    if (!trap) {
      trap = { index, path, armed: 0 };
      entry.traps.push(trap);
    }
    return trap;
  };
  const addProblem = (
    entry: NodeStatusEntry,
    trap: NodeStatusEntry["traps"][number],
    problem: NonNullable<NodeStatusEntry["traps"][number]["problems"]>[number],
  ) => {
    // A block the backend cannot enforce is armed to alert: reported, but armed.
    if (problem.reason !== REASON_BLOCK_NOT_ENFORCED) entry.notArmed++;
    trap.problems ??= [];
    if (trap.problems.length < MAX_PROBLEMS) trap.problems.push(problem);
  };
  for (const outcome of outcomes) {
    const entry = entryFor(outcome.target.policy);
    const trap = trapFor(entry, outcome.target.trapIndex, outcome.target.trap.path);
    if (outcome.ok) {
      trap.armed++;
      entry.armed++;
      if (outcome.decoy && !listable(entry, trap)) {
        entry.decoysNotListed = (entry.decoysNotListed ?? 0) + 1;
      } else if (outcome.decoy) {
        (trap.decoys ??= []).push({
          pod: outcome.target.pod.name,
          namespace: outcome.target.pod.namespace,
          container: outcome.target.container.name,
          id: outcome.decoy.id,
          kind: outcome.decoy.kind,
        });
      }
    } else {
      addProblem(entry, trap, {
        pod: outcome.target.pod.name,
        namespace: outcome.target.pod.namespace,
        container: outcome.target.container.name,
        reason: outcome.reason,
        message: outcome.message,
      });
    }
  }
  for (const problem of problems) {
    const entry = entryFor(problem.policy);
    const trap = trapFor(entry, problem.trapIndex, problem.path);
    addProblem(entry, trap, {
      pod: problem.pod.name,
      namespace: problem.pod.namespace,
      container: problem.container,
      reason: problem.reason,
      message: problem.message,
    });
  }
  for (const { target, change } of changes) {
    const trap = trapFor(entryFor(target.policy), target.trapIndex, target.trap.path);
    trap.changes ??= [];
    trap.changes.push({
      pod: target.pod.name,
      namespace: target.pod.namespace,
      container: target.container.name,
      kind: change.kind,
      message: change.message,
      time: change.time,
    });
  }
  for (const { entry } of result.values()) {
    entry.traps.sort((a, b) => a.index - b.index);
    for (const trap of entry.traps) {
      trap.changes?.sort((a, b) => a.time.localeCompare(b.time));
      trap.changes?.splice(0, Math.max(0, trap.changes.length - MAX_CHANGES));
      trap.decoys?.sort((a, b) =>
        `${a.namespace}/${a.pod}/${a.container}`.localeCompare(
          `${b.namespace}/${b.pod}/${b.container}`,
        )
      );
    }
  }
  return result;
}

/** Whether one more decoy fits the trap's list and the report's. */
function listable(entry: NodeStatusEntry, trap: NodeStatusEntry["traps"][number]): boolean {
  const listed = entry.traps.reduce((sum, t) => sum + (t.decoys?.length ?? 0), 0);
  return (trap.decoys?.length ?? 0) < MAX_DECOYS_LISTED && listed < MAX_DECOYS_PER_REPORT;
}
