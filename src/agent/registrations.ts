/**
 * The registrations a node hands to the leader of its kernel: published as ConfigMaps labelled
 * with the node and the kernel id (split to stay under the API server's object size), and read
 * back from the peers' ConfigMaps by whichever agent leads the kernel.
 *
 * @module
 */
import {
  type CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
} from "@kubernetes/client-node";
import { GROUP } from "../api/mod.ts";
import { apiStatus } from "../kube/mod.ts";
import type { TrapRegistration } from "./alert.ts";
import type { Logger } from "./log.ts";
import { FIELD_MANAGER_PREFIX } from "./policy_status.ts";

/** Label on each node's registration ConfigMap: the kernel it runs on. */
export const KERNEL_LABEL = `${GROUP}/kernel-id`;
/** Label on each node's registration ConfigMap: the node. */
export const NODE_LABEL = `${GROUP}/node`;
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

/**
 * The registrations of every other node's ConfigMap; an unreadable one is logged and skipped.
 *
 * @param configMaps The registration ConfigMaps of this kernel.
 * @param nodeName This node, whose own ConfigMaps are skipped.
 * @param log Where unreadable ones are reported.
 */
export function peerRegistrations(
  configMaps: readonly V1ConfigMap[],
  nodeName: string,
  log: Logger,
): TrapRegistration[] {
  const all: TrapRegistration[] = [];
  for (const object of configMaps) {
    if (object.metadata?.labels?.[NODE_LABEL] === nodeName) continue;
    try {
      all.push(...JSON.parse(object.data?.[REGISTRATIONS_KEY] ?? "[]"));
    } catch (error) {
      log.warn("unreadable registrations", {
        configMap: object.metadata?.name,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return all;
}

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
    try {
      for (const [index, chunk] of chunks.entries()) {
        const name = `kivebpf-node-${this.#o.nodeName}${index === 0 ? "" : `-${index}`}`;
        const body: V1ConfigMap = {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: {
            name,
            namespace: this.#o.namespace,
            labels: {
              [KERNEL_LABEL]: this.#o.kernelId,
              [NODE_LABEL]: this.#o.nodeName,
              "app.kubernetes.io/name": "kivebpf",
            },
          },
          data: { [REGISTRATIONS_KEY]: chunk },
        };
        await core.patchNamespacedConfigMap(
          {
            name,
            namespace: this.#o.namespace,
            body,
            fieldManager: FIELD_MANAGER_PREFIX,
            force: true,
          },
          setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply),
        );
      }
      // Chunks a larger set needed earlier are deleted only after the new ones are written.
      for (let index = chunks.length; index < this.#chunks; index++) {
        await core.deleteNamespacedConfigMap({
          name: `kivebpf-node-${this.#o.nodeName}-${index}`,
          namespace: this.#o.namespace,
        }).catch((error) => {
          if (apiStatus(error) !== 404) throw error;
        });
      }
      this.#chunks = chunks.length;
      this.#published = text;
    } catch (error) {
      this.#o.log.warn("cannot publish trap registrations", { error: this.#o.describe(error) });
    }
  }
}
