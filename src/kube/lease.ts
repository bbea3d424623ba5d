/**
 * Leader election on a `coordination.k8s.io/v1` Lease, the way client-go does it: the holder
 * renews the Lease; a candidate takes it over only after it has seen the same record unchanged
 * for a whole lease duration on its OWN clock (so clock skew between nodes does not matter);
 * every write is conditional on the resourceVersion read, so two candidates never both win.
 *
 * Unlike client-go, leadership fails OPEN: a holder that cannot reach the API server keeps
 * leading until it reads the Lease and sees another holder. For a tripwire, two agents reporting
 * the same access for a moment after a partition is a duplicate; none reporting is a blind spot.
 * A candidate checks again right when the record it watches would expire, so a dead holder is
 * replaced one lease duration after its last renewal, not up to a retry interval later.
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
  /** Told about API errors; leadership is kept through them (see the module doc). */
  onError?: (error: unknown) => void;
  /**
   * Told when this candidate took the Lease from another holder: how long after the record
   * last changed, on this candidate's clock (about the lease duration after a crash, near 0
   * after a graceful release).
   */
  onTakeover?: (takeover: { seconds: number; previousHolder?: string }) => void;
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}

/** Campaigns for one Lease until stopped. */
export class LeaseElector {
  readonly #api: CoordinationV1Api;
  readonly #options:
    & Required<Omit<LeaseElectorOptions, "onError" | "onTakeover" | "labels">>
    & LeaseElectorOptions;
  #leading = false;
  #observed?: { key: string; at: number; expiresAt?: number };
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

  /**
   * Whether the kernel has a leader this candidate knows of: itself, or another holder whose
   * record has not expired since it was last seen changing (readiness reads it).
   */
  get leaderKnown(): boolean {
    if (this.#leading) return true;
    const expiresAt = this.#observed?.expiresAt;
    return expiresAt !== undefined && Date.now() < expiresAt;
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
      const release = async () => {
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
      };
      try {
        await this.#bounded(release());
      } catch (error) {
        this.#options.onError?.(error);
      }
      this.#setLeading(false);
    }
  }

  /**
   * An API server that accepts connections but never answers must not stall the campaign or
   * stop(): past half a lease duration a call is given up on (and the role kept).
   */
  #bounded(call: Promise<void>): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const limit = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, (this.#options.leaseSeconds * 1000) / 2);
    });
    return Promise.race([call, limit]).finally(() => clearTimeout(timer));
  }

  async #tick(): Promise<void> {
    this.#running = this.#bounded(this.#attempt());
    await this.#running;
    if (!this.#stopped) this.#timer = setTimeout(() => this.#tick(), this.#nextDelayMs());
  }

  /** The retry interval, or less when the record a candidate watches expires sooner. */
  #nextDelayMs(): number {
    const retry = this.#options.retrySeconds * 1000;
    const expiresAt = this.#leading ? undefined : this.#observed?.expiresAt;
    if (expiresAt === undefined) return retry;
    // A few ms past expiry, so the check that follows sees it expired.
    return Math.max(0, Math.min(retry, expiresAt - Date.now() + 5));
  }

  #setLeading(leading: boolean): void {
    // An attempt given up on may still answer after stop(): it must not make us lead again.
    if (leading === this.#leading || (leading && this.#stopped)) return;
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
        this.#setLeading(true);
        return;
      }
      const spec = lease.spec ?? {};
      const key =
        `${spec.holderIdentity}/${spec.renewTime?.valueOf()}/${lease.metadata?.resourceVersion}`;
      if (this.#observed?.key !== key) this.#observed = { key, at: Date.now() };
      const holder = spec.holderIdentity;
      const duration = (spec.leaseDurationSeconds ?? leaseSeconds) * 1000;
      this.#observed.expiresAt = holder ? this.#observed.at + duration : undefined;
      const expired = !holder || Date.now() - this.#observed.at > duration;
      if (holder !== identity && !expired) {
        this.#setLeading(false);
        return;
      }
      const takingOver = holder !== identity;
      const observedAt = this.#observed.at;
      lease.spec = {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: leaseSeconds,
        renewTime: now,
        acquireTime: takingOver || !spec.acquireTime ? now : new V1MicroTime(spec.acquireTime),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver ? 1 : 0),
      };
      await this.#api.replaceNamespacedLease({ name, namespace, body: lease });
      this.#observed = undefined;
      if (takingOver) {
        this.#options.onTakeover?.({
          seconds: (Date.now() - observedAt) / 1000,
          previousHolder: holder || undefined,
        });
      }
      this.#setLeading(true);
    } catch (error) {
      // 409: another candidate wrote first; we learn who on the next attempt. Anything else
      // (the API server unreachable, a timeout) keeps the current role: fail open.
      if (statusOf(error) !== 409) this.#options.onError?.(error);
    }
  }
}
