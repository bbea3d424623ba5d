/**
 * The `status` subresource of a KivePolicy, the same in every version: conditions, the total
 * armed, and one entry per node with each trap's armed count, problems and changes.
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

/** What one node reports about one trap. */
const trapStatus = z.object({
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
});

/** What the agent of one node reports; each node applies only its own entry. */
const nodeStatus = z.object({
  node: z.string(),
  kernelId: z.string().optional(),
  backend: z.string().optional(),
  observedGeneration: z.number().int().optional(),
  armed: z.number().int().min(0),
  alerts: z.number().int().min(0).optional(),
  traps: z.array(trapStatus).optional().meta({
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["index"],
  }),
  updated: z.string().optional(),
});

/** The `status` subresource, the same in every version. */
export const PolicyStatus = z.object({
  observedGeneration: z.number().int().optional(),
  armed: z.number().int().min(0).optional().meta({
    description: "(trap, container) pairs armed on all nodes together.",
  }),
  conditions: z.array(condition).optional().meta({
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
  }),
  nodes: z.array(nodeStatus).optional().meta({
    description: "One entry per node whose agent has matching containers.",
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["node"],
  }),
});
/** A parsed policy status. */
export type PolicyStatus = ReturnType<typeof PolicyStatus.parse>;
