/**
 * What the kernel's leader armed, told to the other agents on the same kernel, so that their
 * status says "armed" only for inodes really in the kernel's trap map (planted is not armed).
 *
 * The leader publishes the set as one ConfigMap per kernel (labelled with the kernel id, so the
 * followers' registration watch already sees it), and only where the kernel is shared: with no
 * peer registrations there is no follower to tell, and no API write is spent.
 *
 * @module
 */
import type { CoreV1Api, V1ConfigMap } from "@kubernetes/client-node";
import { z } from "zod";
import { GROUP } from "../api/mod.ts";
import { applyConfigMap } from "../kube/mod.ts";
import type { TrapRegistration } from "./alert.ts";
import type { Logger } from "./log.ts";
import {
  FIELD_MANAGER_PREFIX,
  REASON_ARM_FAILED,
  REASON_NO_KERNEL_LEADER,
  REASON_NOT_ARMED_BY_LEADER,
} from "./policy_status.ts";
import type { PlantOutcome } from "./status.ts";
import { KERNEL_LABEL } from "./registrations.ts";

/** Label of the armed-set ConfigMap (registration ConfigMaps have none). */
export const ARMED_SET_LABEL = `${GROUP}/armed-set`;
const ARMED_KEY = "armed.json";

const ArmedSetSchema = z.object({
  leader: z.string(),
  inodes: z.array(z.string().regex(/^\d+:\d+$/)),
});

/** The leader and the `dev:ino` of every inode it armed. */
export type ArmedSet = z.infer<typeof ArmedSetSchema>;

/** The armed-set ConfigMap's name for a kernel. */
export function armedSetName(kernelId: string): string {
  return `kivebpf-kernel-${kernelId.toLowerCase().replace(/[^a-z0-9-]/g, "-")}-armed`;
}

/**
 * Reads the armed set among the kernel's ConfigMaps; a malformed one counts as none.
 *
 * @param configMaps The ConfigMaps labelled with this kernel.
 * @param log Where a malformed set is reported.
 * @returns The set, or undefined when there is none or it is unreadable.
 */
export function readArmedSet(
  configMaps: readonly V1ConfigMap[],
  log: Logger,
): ArmedSet | undefined {
  const object = configMaps.find((c) => c.metadata?.labels?.[ARMED_SET_LABEL] === "true");
  if (!object) return undefined;
  try {
    const parsed = ArmedSetSchema.safeParse(JSON.parse(object.data?.[ARMED_KEY] ?? ""));
    if (parsed.success) return parsed.data;
    log.warn("unreadable armed set", {
      configMap: object.metadata?.name,
      error: parsed.error.issues[0].message,
    });
  } catch (error) {
    log.warn("unreadable armed set", {
      configMap: object.metadata?.name,
      error: (error as Error).message,
    });
  }
  return undefined;
}

/** Options of {@linkcode ArmedSetPublisher}. */
export interface ArmedSetPublisherOptions {
  core: CoreV1Api;
  namespace: string;
  kernelId: string;
  nodeName: string;
  log: Logger;
  describe: (error: unknown) => string;
}

/** Keeps the kernel's armed-set ConfigMap equal to what this leader armed. */
export class ArmedSetPublisher {
  readonly #o: ArmedSetPublisherOptions;
  #published?: string;

  /** @param options The kernel, the leader and the client. */
  constructor(options: ArmedSetPublisherOptions) {
    this.#o = options;
  }

  /**
   * Publishes the armed inodes (skipped when unchanged); a failure is logged and retried at
   * the next call.
   *
   * @param inodes Every armed inode as `dev:ino`, sorted.
   */
  async publish(inodes: readonly string[]): Promise<void> {
    const set: ArmedSet = { leader: this.#o.nodeName, inodes: [...inodes] };
    const text = JSON.stringify(set);
    if (text === this.#published) return;
    const name = armedSetName(this.#o.kernelId);
    try {
      await applyConfigMap(this.#o.core, {
        name,
        namespace: this.#o.namespace,
        labels: {
          [KERNEL_LABEL]: this.#o.kernelId,
          [ARMED_SET_LABEL]: "true",
          "app.kubernetes.io/name": "kivebpf",
        },
        data: { [ARMED_KEY]: text },
        fieldManager: FIELD_MANAGER_PREFIX,
      });
      this.#published = text;
    } catch (error) {
      this.#o.log.warn("cannot publish the kernel's armed set", {
        configMap: name,
        error: this.#o.describe(error),
      });
    }
  }

  /** Forgets what was published (a new leadership starts by publishing again). */
  reset(): void {
    this.#published = undefined;
  }
}

/** What an agent knows of its kernel's arming, for {@linkcode kernelOutcome}. */
export interface KernelView {
  /** Whether this agent leads the kernel (it armed, or was refused, itself). */
  leading: boolean;
  /** Whether some agent is known to lead the kernel. */
  leaderKnown: boolean;
  /** The kernel's refusal of a registration, while leading. */
  armFailure(registration: TrapRegistration): string | undefined;
  /** What the leader published, when another agent leads. */
  armedSet?: ArmedSet;
}

/**
 * The status outcome of a planted trap: planted is not armed. A leader reports its kernel's
 * verdict; a follower reports armed only for inodes in its leader's armed set.
 *
 * @param outcome The planting outcome.
 * @param registration The trap's registration, when planted.
 * @param view What this agent knows of the kernel.
 * @returns The outcome status should show.
 */
export function kernelOutcome(
  outcome: PlantOutcome,
  registration: TrapRegistration | undefined,
  view: KernelView,
): PlantOutcome {
  if (!outcome.ok || !registration) return outcome;
  const { target } = outcome;
  const notArmed = (reason: string, message: string): PlantOutcome => ({
    target,
    ok: false,
    reason,
    message,
  });
  if (view.leading) {
    const failure = view.armFailure(registration);
    return failure === undefined ? outcome : notArmed(REASON_ARM_FAILED, failure);
  }
  if (!view.leaderKnown) {
    return notArmed(
      REASON_NO_KERNEL_LEADER,
      "the trap file is planted, but no agent leads this node's kernel now to arm it",
    );
  }
  const inode = `${registration.dev}:${registration.ino}`;
  if (view.armedSet?.inodes.includes(inode)) return outcome;
  return notArmed(
    REASON_NOT_ARMED_BY_LEADER,
    `the trap file is planted, but the kernel's leader ${
      view.armedSet?.leader ?? "(unknown)"
    } has not armed inode ${inode}`,
  );
}
