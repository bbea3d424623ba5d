/**
 * Leader election on a `coordination.k8s.io/v1` Lease, the way client-go does it: the holder
 * renews the Lease; a candidate takes it over only after it has seen the same record unchanged
 * for a whole lease duration on its OWN clock (so clock skew between nodes does not matter);
 * every write is conditional on the resourceVersion read, so two candidates never both win.
 *
 * @module
 */
import { type CoordinationV1Api, type V1Lease, V1MicroTime } from "@kubernetes/client-node";

/** Options of {@linkcode LeaseElector}. */
export interface LeaseElectorOptions {
  /** The namespace of the Lease. */
  namespace: string;
  /** The name of the Lease; every candidate for the same role uses the same one. */
  name: string;
  /** This candidate's identity (the node or pod name). */
  identity: string;
  /** How long a lease is valid without renewal. Default 15 s. */
  leaseSeconds?: number;
  /** How often to renew or retry. Default 2 s. */
  retrySeconds?: number;
  /** Labels for a Lease this candidate creates. */
  labels?: Record<string, string>;
  /** Told when leadership is gained or lost. */
  onChange: (leading: boolean) => void;
  /** Told about API errors (leadership is kept until the lease would expire). */
  onError?: (error: unknown) => void;
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}

/** Campaigns for one Lease until stopped. */
export class LeaseElector {
  readonly #api: CoordinationV1Api;
  readonly #options:
    & Required<Omit<LeaseElectorOptions, "onError" | "labels">>
    & LeaseElectorOptions;
  #leading = false;
  #lastRenew = 0;
  #observed?: { key: string; at: number };
  #timer?: ReturnType<typeof setTimeout>;
  #stopped = true;
  #running?: Promise<void>;

  /**
   * Prepares a candidate; it campaigns only once started.
   *
   * @param api The coordination API client.
   * @param options The Lease and the candidate.
   */
  constructor(api: CoordinationV1Api, options: LeaseElectorOptions) {
    this.#api = api;
    this.#options = {
      ...options,
      leaseSeconds: options.leaseSeconds ?? 15,
      retrySeconds: options.retrySeconds ?? 2,
    };
  }

  /** Whether this candidate holds the Lease now. */
  get leading(): boolean {
    return this.#leading;
  }

  /** Starts campaigning; the first attempt completes before this resolves. */
  async start(): Promise<void> {
    this.#stopped = false;
    await this.#tick();
  }

  /**
   * Stops campaigning. A leader releases the Lease so another candidate takes over at once
   * instead of after a lease duration.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    if (this.#leading) {
      try {
        const lease = await this.#api.readNamespacedLease({
          name: this.#options.name,
          namespace: this.#options.namespace,
        });
        if (lease.spec?.holderIdentity === this.#options.identity) {
          lease.spec.holderIdentity = undefined;
          lease.spec.leaseDurationSeconds = 1;
          await this.#api.replaceNamespacedLease({
            name: this.#options.name,
            namespace: this.#options.namespace,
            body: lease,
          });
        }
      } catch (error) {
        this.#options.onError?.(error);
      }
      this.#setLeading(false);
    }
  }

  async #tick(): Promise<void> {
    this.#running = this.#attempt();
    await this.#running;
    if (!this.#stopped) {
      this.#timer = setTimeout(() => this.#tick(), this.#options.retrySeconds * 1000);
    }
  }

  #setLeading(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    this.#options.onChange(leading);
  }

  async #attempt(): Promise<void> {
    const { name, namespace, identity, leaseSeconds } = this.#options;
    // MicroTime: the API server rejects the millisecond form a plain Date serializes to.
    const now = new V1MicroTime();
    try {
      let lease: V1Lease;
      try {
        lease = await this.#api.readNamespacedLease({ name, namespace });
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
        await this.#api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace, labels: this.#options.labels },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: leaseSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        this.#renewed();
        return;
      }
      const spec = lease.spec ?? {};
      const key =
        `${spec.holderIdentity}/${spec.renewTime?.valueOf()}/${lease.metadata?.resourceVersion}`;
      if (this.#observed?.key !== key) this.#observed = { key, at: Date.now() };
      const holder = spec.holderIdentity;
      const duration = (spec.leaseDurationSeconds ?? leaseSeconds) * 1000;
      const expired = !holder || Date.now() - this.#observed.at > duration;
      if (holder !== identity && !expired) {
        this.#setLeading(false);
        return;
      }
      const takingOver = holder !== identity;
      lease.spec = {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: leaseSeconds,
        renewTime: now,
        acquireTime: takingOver || !spec.acquireTime ? now : new V1MicroTime(spec.acquireTime),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver ? 1 : 0),
      };
      await this.#api.replaceNamespacedLease({ name, namespace, body: lease });
      this.#renewed();
    } catch (error) {
      // 409: another candidate wrote first; we learn who on the next attempt.
      if (statusOf(error) !== 409) this.#options.onError?.(error);
      // Give up before others may take over (they wait a full duration from their last look).
      if (this.#leading && Date.now() - this.#lastRenew > (leaseSeconds * 1000 * 2) / 3) {
        this.#setLeading(false);
      }
    }
  }

  #renewed(): void {
    this.#lastRenew = Date.now();
    this.#setLeading(true);
  }
}
