/**
 * Kubernetes Events on the pods whose traps were accessed or changed, rate-limited per pod and
 * reason so that a container hammering its trap cannot flood the API server. Creating an Event
 * never waits and never fails the caller.
 *
 * @module
 */
import { type EventsV1Api, V1MicroTime } from "@kubernetes/client-node";
import { GROUP } from "../api/mod.ts";
import type { Logger } from "./log.ts";
import { describe } from "./describe.ts";

/** Options of {@linkcode PodEvents}. */
export interface PodEventsOptions {
  /** Creates the Events; none without it. */
  api?: EventsV1Api;
  /** The agent's node, reported as the Events' instance. */
  nodeName: string;
  log: Logger;
  /** At most one Event per pod and reason per this many seconds. Default 10. */
  minSeconds?: number;
}

/** The pod an Event is about. */
export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

/** What an Event says. */
export interface PodEventText {
  /** e.g. `TrapAccessed`, `TrapFileChanged`. */
  reason: string;
  /** e.g. `Access`, `Change`. */
  action: string;
  /** The human-readable note (cut at 1,024 characters, the API's limit). */
  note: string;
}

/** Rate-limit entries kept before the oldest are forgotten. */
const MAX_REMEMBERED = 10_000;

/** Creates rate-limited pod Events. */
export class PodEvents {
  readonly #o: PodEventsOptions;
  readonly #last = new Map<string, number>();

  /** @param options The Events client, the node and the rate limit. */
  constructor(options: PodEventsOptions) {
    this.#o = options;
  }

  /**
   * Creates a Warning Event on the pod, unless one with this reason was created recently.
   *
   * @param pod The pod the Event is about.
   * @param text Its reason, action and note.
   * @returns Whether an Event was sent.
   */
  emit(pod: PodRef, text: PodEventText): boolean {
    const api = this.#o.api;
    if (!api) return false;
    const key = `${pod.namespace}/${pod.name}/${text.reason}`;
    const now = Date.now();
    if (now - (this.#last.get(key) ?? 0) < (this.#o.minSeconds ?? 10) * 1000) return false;
    this.#last.delete(key);
    this.#last.set(key, now);
    if (this.#last.size > MAX_REMEMBERED) this.#last.delete(this.#last.keys().next().value!);
    api.createNamespacedEvent({
      namespace: pod.namespace,
      body: {
        metadata: { generateName: `${pod.name}.kivebpf-` },
        eventTime: new V1MicroTime(),
        reportingController: `${GROUP}/agent`,
        reportingInstance: this.#o.nodeName,
        action: text.action,
        reason: text.reason,
        type: "Warning",
        note: text.note.slice(0, 1024),
        regarding: {
          apiVersion: "v1",
          kind: "Pod",
          name: pod.name,
          namespace: pod.namespace,
          uid: pod.uid,
        },
      },
    }).catch((error) => this.#o.log.debug("cannot create pod event", { error: describe(error) }));
    return true;
  }
}
