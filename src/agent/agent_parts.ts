/**
 * The parts of a node agent that need nothing from the agent itself, built from its options:
 * registration and report writers, the policy status writer, the alert path and the kernel
 * side, the armed-set publisher and the trap-change reporter; and the kernel's Lease.
 *
 * @module
 */
import { LeaseElector } from "../kube/mod.ts";
import type { NodeAgentOptions } from "./agent_options.ts";
import { AlertRouter } from "./alert_router.ts";
import { ArmedSetPublisher } from "./armed_set.ts";
import { CallbackHeaders } from "./callback_headers.ts";
import { describe } from "./describe.ts";
import type { KernelArms } from "./kernel_arms.ts";
import { KernelLeader } from "./kernel_leader.ts";
import { NodeReportWriter } from "./node_reports.ts";
import { PodEvents } from "./pod_events.ts";
import { PolicyStatusWriter } from "./policy_status.ts";
import { KERNEL_LABEL, RegistrationPublisher } from "./registrations.ts";
import { TrapChangeReporter } from "./trap_changes.ts";

/** What {@linkcode agentParts} builds. */
export interface AgentParts {
  publisher: RegistrationPublisher;
  status: PolicyStatusWriter;
  reports: NodeReportWriter;
  alerts: AlertRouter;
  kernel: KernelLeader;
  armedSet: ArmedSetPublisher;
  changes: TrapChangeReporter;
}

/**
 * Builds the parts.
 *
 * @param options The agent's options.
 * @param arms The kernel bookkeeping the alert router and the kernel leader share.
 */
export function agentParts(options: NodeAgentOptions, arms: KernelArms): AgentParts {
  const { custom, core } = options.apis;
  const { nodeName, namespace, kernelId, log, metrics } = options;
  // One writer of pod Events, rate-limited per pod and reason, for accesses and changes.
  const podEvents = new PodEvents({
    api: options.apis.events,
    nodeName,
    log,
    minSeconds: options.podEventSeconds,
  });
  const headers = new CallbackHeaders({ core, namespace, log });
  const alerts = new AlertRouter({
    kernelId,
    log,
    metrics,
    output: options.output,
    format: options.alertFormat,
    headers,
    podEvents,
    containerOf: options.planter.containerOf?.bind(options.planter),
  }, arms);
  return {
    publisher: new RegistrationPublisher({ core, nodeName, namespace, kernelId, log, describe }),
    status: new PolicyStatusWriter({
      nodeName,
      kernelId,
      namespace,
      custom,
      coordination: options.apis.coordination,
      log,
      describe,
    }),
    reports: new NodeReportWriter({ nodeName, custom, log, describe }),
    alerts,
    kernel: new KernelLeader({
      nodeName,
      kernelId,
      log,
      metrics,
      openEngine: options.openEngine,
      alerts,
      arms,
      headers,
      cgroupFilter: options.cgroupFilter,
      describe,
    }),
    armedSet: new ArmedSetPublisher({ core, namespace, kernelId, nodeName, log, describe }),
    changes: new TrapChangeReporter({ log, metrics, events: podEvents }),
  };
}

/**
 * The Lease that makes one agent per kernel its leader.
 *
 * @param options The agent's options.
 * @param onChange Told each time this agent starts or stops leading.
 */
export function kernelLease(
  options: NodeAgentOptions,
  onChange: (leading: boolean) => void,
): LeaseElector {
  const { log, metrics, kernelId } = options;
  return new LeaseElector(options.apis.coordination, {
    namespace: options.namespace,
    name: `kivebpf-kernel-${kernelId}`,
    identity: options.nodeName,
    leaseSeconds: options.leaseSeconds,
    retrySeconds: options.leaseRetrySeconds,
    labels: { [KERNEL_LABEL]: kernelId, "app.kubernetes.io/name": "kivebpf" },
    onChange,
    onError: (error) => log.warn("lease update failed", { error: describe(error) }),
    onTakeover: ({ seconds, previousHolder }) => {
      log.info("took over the kernel's Lease", { previousHolder, seconds });
      const labels = { kernel_id: kernelId };
      metrics?.leaseTakeoverSeconds.set(labels, seconds);
      metrics?.leaseTakeovers.inc(labels);
    },
  });
}
