/**
 * The registrations a node hands to the leader of its kernel: published as ConfigMaps labelled
 * with the node and the kernel id (split to stay under the API server's object size), and read
 * back from the peers' ConfigMaps by whichever agent leads the kernel.
 *
 * @module
 */
import type { CoreV1Api, V1ConfigMap } from "@kubernetes/client-node";
import { z } from "zod";
import { GROUP, labelValueOf, NODE_LABEL } from "../api/mod.ts";
import { apiStatus, applyConfigMap } from "../kube/mod.ts";
import type { TrapRegistration } from "./alert.ts";
import type { Logger } from "./log.ts";
import { FIELD_MANAGER_PREFIX } from "./policy_status.ts";

/** Label on each node's registration ConfigMap: the kernel it runs on. */
export const KERNEL_LABEL = `${GROUP}/kernel-id`;
/** Label on each node's registration ConfigMap: the node (see labelValueOf). */
export { NODE_LABEL } from "../api/mod.ts";
const REGISTRATIONS_KEY = "registrations.json";
/**
 * Registrations per ConfigMap are kept under this many bytes: the API server refuses requests
 * over 3 MiB and etcd objects over 1.5 MiB, and 10,000 registrations take about 5 MiB.
 */
export const MAX_CONFIGMAP_BYTES = 900_000;

/**
 * Splits registrations into JSON arrays of at most `maxBytes` each (at least one, possibly
 * empty, so that a node with nothing armed still publishes that).
 *
 * @param registrations This node's registrations.
 * @param maxBytes Size limit of one chunk's JSON text.
 * @returns The JSON texts.
 */
export function chunkRegistrations(
  registrations: readonly TrapRegistration[],
  maxBytes: number,
): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let size = 2;
  for (const registration of registrations) {
    const text = JSON.stringify(registration);
    if (current.length > 0 && size + text.length + 1 > maxBytes) {
      chunks.push(`[${current.join(",")}]`);
      current = [];
      size = 2;
    }
    current.push(text);
    size += text.length + 1;
  }
  chunks.push(`[${current.join(",")}]`);
  return chunks;
}

const decimal = z.string().regex(/^\d{1,20}$/, "must be a decimal number of at most 20 digits");
const named = z.object({ namespace: z.string(), name: z.string(), uid: z.string() });

/**
 * What a peer's registration must look like before the leader arms it: peers' ConfigMaps are
 * input like any other (a malformed inode number once reached `BigInt()` and stopped the sync).
 */
export const TrapRegistrationSchema = z.object({
  dev: z.number().int().min(0).max(0xffff_ffff),
  ino: decimal,
  policy: named,
  trapIndex: z.number().int().min(0),
  path: z.string(),
  alertVersion: z.string(),
  metadata: z.record(z.string(), z.string()),
  callback: z.string().optional(),
  callbackCABundle: z.string().optional(),
  callbackHeadersSecret: z.string().optional(),
  callbackFormat: z.enum(["kive", "falco", "cloudevents"]).optional(),
  action: z.enum(["alert", "block"]),
  pod: named,
  container: z.object({ name: z.string(), id: z.string() }),
  node: z.string(),
  cgroupId: decimal.optional(),
  decoy: z.object({ id: z.string().regex(/^[A-Z2-7]{16}$/), kind: z.string().max(64) }).optional(),
});

/**
 * The registrations of every other node's ConfigMap. An unreadable ConfigMap, or one entry that
 * does not fit {@linkcode TrapRegistrationSchema}, is logged (naming the ConfigMap, the entry
 * and the field) and skipped; the rest are kept.
 *
 * @param configMaps The registration ConfigMaps of this kernel.
 * @param nodeName This node, whose own ConfigMaps are skipped.
 * @param log Where unreadable ones are reported.
 * @returns The valid registrations of the peers.
 */
export function peerRegistrations(
  configMaps: readonly V1ConfigMap[],
  nodeName: string,
  log: Logger,
): TrapRegistration[] {
  const all: TrapRegistration[] = [];
  for (const object of configMaps) {
    if (object.metadata?.labels?.[NODE_LABEL] === labelValueOf(nodeName)) continue;
    const configMap = object.metadata?.name;
    let entries: unknown;
    try {
      entries = JSON.parse(object.data?.[REGISTRATIONS_KEY] ?? "[]");
    } catch (error) {
      log.warn("unreadable registrations", {
        configMap,
        error: error instanceof Error ? error.message : String(error),
      });
      continue;
    }
    if (!Array.isArray(entries)) {
      log.warn("unreadable registrations", { configMap, error: "not a JSON array" });
      continue;
    }
    entries.forEach((entry, index) => {
      const parsed = TrapRegistrationSchema.safeParse(entry);
      if (parsed.success) {
        all.push(parsed.data);
      } else {
        const issue = parsed.error.issues[0];
        log.warn("invalid peer registration skipped", {
          configMap,
          entry: index,
          field: issue.path.join("."),
          error: issue.message,
        });
      }
    });
  }
  return all;
}

/**
 * Whether another node's agent shares this kernel: it has a registration ConfigMap labelled
 * with the kernel (followers always publish one, even empty).
 *
 * @param configMaps The registration ConfigMaps of this kernel.
 * @param nodeName This node.
 */
export function kernelShared(configMaps: readonly V1ConfigMap[], nodeName: string): boolean {
  const self = labelValueOf(nodeName);
  return configMaps.some((c) => {
    const node = c.metadata?.labels?.[NODE_LABEL];
    return node !== undefined && node !== self;
  });
}

/**
 * What a node does with its registrations in one pass: a follower publishes them for its
 * kernel's leader; the leader too while another node shares the kernel (so that a successor can
 * arm its traps); a leader alone on its kernel withdraws them; before the Lease has been read,
 * nothing is decided.
 *
 * @param state Whether the Lease was read, whether this agent leads, whether the kernel is shared.
 */
export function handOverAction(
  state: { leaderKnown: boolean; leading: boolean; shared: boolean },
): "wait" | "publish" | "withdraw" {
  if (!state.leaderKnown && !state.leading) return "wait";
  return !state.leading || state.shared ? "publish" : "withdraw";
}

/** What {@linkcode RegistrationPublisher} last wrote when it removed its ConfigMaps. */
const WITHDRAWN = "\u0000withdrawn";

/** Options of {@linkcode RegistrationPublisher}. */
export interface RegistrationPublisherOptions {
  core: CoreV1Api;
  nodeName: string;
  namespace: string;
  kernelId: string;
  log: Logger;
  describe: (error: unknown) => string;
}

/** Keeps this node's registration ConfigMaps equal to its registrations. */
export class RegistrationPublisher {
  readonly #o: RegistrationPublisherOptions;
  #published?: string;
  #chunks = 0;

  /** @param options The node, its kernel and the client. */
  constructor(options: RegistrationPublisherOptions) {
    this.#o = options;
  }

  /**
   * Publishes this node's registrations (server-side apply, one field manager), in as many
   * ConfigMaps as their size needs; skips an unchanged set; logs and retries next time on
   * failure.
   *
   * @param registrations This node's registrations.
   */
  async publish(registrations: readonly TrapRegistration[]): Promise<void> {
    const text = JSON.stringify(registrations);
    if (text === this.#published) return;
    const { core } = this.#o;
    const chunks = chunkRegistrations(registrations, MAX_CONFIGMAP_BYTES);
    // Each chunk on its own: one the API server refuses (an oversized entry) leaves the others
    // published, and only its own traps wait for the next attempt.
    let failed = 0;
    for (const [index, chunk] of chunks.entries()) {
      try {
        await this.#applyChunk(index, chunk);
      } catch (error) {
        failed++;
        this.#o.log.warn("cannot publish trap registrations", {
          configMap: this.#chunkName(index),
          registrations: (JSON.parse(chunk) as unknown[]).length,
          error: this.#o.describe(error),
        });
      }
    }
    if (failed > 0) return;
    try {
      // Chunks a larger set needed earlier are deleted only after the new ones are written.
      for (let index = chunks.length; index < this.#chunks; index++) {
        await core.deleteNamespacedConfigMap({
          name: this.#chunkName(index),
          namespace: this.#o.namespace,
        }).catch((error) => {
          if (apiStatus(error) !== 404) throw error;
        });
      }
      this.#chunks = chunks.length;
      this.#published = text;
    } catch (error) {
      this.#o.log.warn("cannot remove stale registration chunks", {
        error: this.#o.describe(error),
      });
    }
  }

  /**
   * Removes this node's registration ConfigMaps (also one left by an earlier run): where no
   * other agent shares the kernel, the leader needs no registrations from itself, and none is
   * written. Does nothing once withdrawn, until the next publish.
   */
  async withdraw(): Promise<void> {
    if (this.#published === WITHDRAWN) return;
    try {
      for (let index = 0; index < Math.max(this.#chunks, 1); index++) {
        await this.#o.core.deleteNamespacedConfigMap({
          name: this.#chunkName(index),
          namespace: this.#o.namespace,
        }).catch((error) => {
          if (apiStatus(error) !== 404) throw error;
        });
      }
      this.#chunks = 0;
      this.#published = WITHDRAWN;
    } catch (error) {
      this.#o.log.warn("cannot remove this node's registrations", {
        error: this.#o.describe(error),
      });
    }
  }

  #chunkName(index: number): string {
    return `kivebpf-node-${this.#o.nodeName}${index === 0 ? "" : `-${index}`}`;
  }

  /** Server-side applies one chunk (one field manager, taking over its fields). */
  #applyChunk(index: number, chunk: string): Promise<void> {
    return applyConfigMap(this.#o.core, {
      name: this.#chunkName(index),
      namespace: this.#o.namespace,
      labels: {
        [KERNEL_LABEL]: this.#o.kernelId,
        [NODE_LABEL]: labelValueOf(this.#o.nodeName),
        "app.kubernetes.io/name": "kivebpf",
      },
      data: { [REGISTRATIONS_KEY]: chunk },
      fieldManager: FIELD_MANAGER_PREFIX,
    });
  }
}
