/**
 * The node agent: KivePolicies x Pods -> trap files -> kernel traps -> KiveAlerts.
 *
 * @module
 */
export { buildAlert, type TrapRegistration } from "./alert.ts";
export {
  type AgentApis,
  type AlertOutput,
  NodeAgent,
  type NodeAgentOptions,
  type TrapPlanter,
} from "./agent.ts";
export {
  computeDesired,
  type ContainerView,
  type DesiredState,
  type PodObject,
  type PodView,
  podView,
  type PolicyRef,
  type TrapProblem,
  type TrapTarget,
} from "./desired.ts";
export { createLogger, type Logger, type LogLevel } from "./log.ts";
export { AGENT_USAGE, runAgent } from "./main.ts";
export { ContainerTrapPlanter } from "./planter.ts";
