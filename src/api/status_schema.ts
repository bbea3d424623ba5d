/**
 * What the agents report. The `status` subresource of a KivePolicy, the same in every version,
 * holds only totals and conditions, so its size does not grow with the number of nodes; each
 * node's detail (per trap: containers armed, problems, changes) is its own `KiveNodeReport`
 * object, one per (policy, node), in the policy's namespace.
 *
 * @module
 */
import { z } from "zod";

const condition = z.object({
  type: z.string(),
  status: z.enum(["True", "False", "Unknown"]),
  reason: z.string().optional(),
  message: z.string().optional(),
  lastTransitionTime: z.string().optional(),
  observedGeneration: z.number().int().optional(),
});

const trapProblem = z.object({
  pod: z.string(),
  namespace: z.string(),
  container: z.string().optional(),
  reason: z.string().meta({
    description: "FileMissing, ContainerNotRunning, PathEscapesRoot, NotARegularFile, ...",
  }),
  message: z.string().optional(),
});

const trapChange = z.object({
  pod: z.string(),
  namespace: z.string(),
  container: z.string(),
  kind: z.string().meta({
    description: "Removed, Replaced, Moved, ReplacedBySymlink, ReplacedByNonFile, ModeChanged, " +
      "OwnerChanged or Linked.",
  }),
  message: z.string(),
  time: z.string(),
});

const trapDecoy = z.object({
  pod: z.string(),
  namespace: z.string(),
  container: z.string(),
  id: z.string().meta({ description: "The decoy id embedded in the generated credentials." }),
  kind: z.string(),
});

/** Decoys listed per trap and node; a node runs a few hundred containers at most. */
export const MAX_DECOYS_LISTED = 512;
/** Decoys listed per report, all traps together: keeps a report far below etcd's 1.5 MiB. */
export const MAX_DECOYS_PER_REPORT = 2048;

/** What one node reports about one trap. */
export const TrapReport = z.object({
  index: z.number().int().min(0).meta({ description: "Position of the trap in spec.traps." }),
  path: z.string(),
  armed: z.number().int().min(0).meta({
    description: "Containers on this node where it is armed.",
  }),
  problems: z.array(trapProblem).max(32).optional().meta({
    description: "Matching containers where it is not armed, and why (first 32).",
  }),
  changes: z.array(trapChange).max(16).optional().meta({
    description: "What containers did to the trap file (removed, moved, chmod...): newest 16.",
  }),
  decoys: z.array(trapDecoy).max(MAX_DECOYS_LISTED).optional().meta({
    description: "The generated decoy (contentFrom.generate) each armed container holds, with " +
      "its id: how a leaked credential is traced back to its pod (docs/DECOYS.md).",
  }),
});

/** The `status` subresource, the same in every version. */
export const PolicyStatus = z.object({
  observedGeneration: z.number().int().optional(),
  armed: z.number().int().min(0).optional().meta({
    description: "(trap, container) pairs armed on all nodes together.",
  }),
  notArmed: z.number().int().min(0).optional().meta({
    description: "(trap, container) pairs not armed, on all nodes together (see KiveNodeReports).",
  }),
  nodeCount: z.number().int().min(0).optional().meta({
    description: "Nodes whose agent reports matching containers (one KiveNodeReport each).",
  }),
  conditions: z.array(condition).optional().meta({
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
  }),
});
/** A parsed policy status. */
export type PolicyStatus = ReturnType<typeof PolicyStatus.parse>;
