/**
 * A cache of one kind of object kept current by list+watch, that never gives up: client-node's
 * `ListWatch` stops on any error other than 410 Gone, so this restarts it with backoff, and it
 * relists from scratch periodically because a watch can silently miss events. Consumers get a
 * level-based signal (`onChange`) and read the whole cache; duplicates are harmless.
 *
 * @module
 */
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from "@kubernetes/client-node";

/** Options of {@linkcode ResourceWatcher}. */
export interface ResourceWatcherOptions<T extends KubernetesObject> {
  /** Watch path, e.g. `/api/v1/pods`. */
  path: string;
  /** Lists the objects (same selectors as the watch). */
  list: () => Promise<KubernetesListObject<T>>;
  /** Label selector for the watch, such as `app=web`; give `list` the same one. */
  labelSelector?: string;
  /** Field selector for the watch, such as `spec.nodeName=node-1`; give `list` the same one. */
  fieldSelector?: string;
  /** Called after any add, update, delete or relist. */
  onChange: () => void;
  /** Called with errors before each restart, for logs and metrics. */
  onError?: (error: unknown) => void;
  /** Relist from scratch this often. Default 300 s. */
  relistSeconds?: number;
  /** First restart delay after an error; doubles up to 30 s. Default 500 ms. */
  backoffMs?: number;
}

const MAX_BACKOFF_MS = 30_000;

/** Keeps a cache of one resource current. */
export class ResourceWatcher<T extends KubernetesObject> {
  readonly #kubeConfig: KubeConfig;
  readonly #options: ResourceWatcherOptions<T>;
  #current?: ListWatch<T>;
  #synced = false;
  #stopped = false;
  #backoffMs: number;
  #restartTimer?: ReturnType<typeof setTimeout>;
  #relistTimer?: ReturnType<typeof setInterval>;

  /**
   * Prepares a watcher; nothing is listed or watched until {@linkcode ResourceWatcher.start}.
   *
   * @param kubeConfig Credentials and server.
   * @param options What to watch and whom to tell.
   */
  constructor(kubeConfig: KubeConfig, options: ResourceWatcherOptions<T>) {
    this.#kubeConfig = kubeConfig;
    this.#options = options;
    this.#backoffMs = options.backoffMs ?? 500;
  }

  /** True once a list has succeeded. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Every cached object. */
  list(): readonly T[] {
    return this.#current?.list() ?? [];
  }

  /**
   * Starts watching; resolves after the first successful list (retrying until then).
   */
  async start(): Promise<void> {
    this.#stopped = false;
    const relistMs = (this.#options.relistSeconds ?? 300) * 1000;
    this.#relistTimer = setInterval(() => this.#relist(), relistMs);
    await this.#startInstance();
  }

  /** Stops watching and cancels timers. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#relistTimer);
    clearTimeout(this.#restartTimer);
    await this.#current?.stop();
  }

  #makeInstance(): ListWatch<T> {
    const instance = new ListWatch<T>(
      this.#options.path,
      new Watch(this.#kubeConfig),
      this.#options.list,
      false,
      this.#options.labelSelector,
      this.#options.fieldSelector,
    );
    const changed = () => {
      if (this.#current === instance) this.#options.onChange();
    };
    instance.on("add", changed);
    instance.on("update", changed);
    instance.on("delete", changed);
    instance.on("connect", () => {
      if (this.#current === instance) this.#backoffMs = this.#options.backoffMs ?? 500;
    });
    instance.on("error", (error) => {
      if (this.#current === instance) this.#scheduleRestart(error);
    });
    return instance;
  }

  async #startInstance(): Promise<void> {
    while (!this.#stopped) {
      const instance = this.#makeInstance();
      const previous = this.#current;
      try {
        // The first list happens inside start(); swap only once it succeeded so readers
        // never see an empty cache during a relist.
        const pending = this.#current === undefined;
        if (pending) this.#current = instance;
        await instance.start();
        if (!pending) {
          this.#current = instance;
          await previous?.stop();
        }
        this.#synced = true;
        this.#options.onChange();
        return;
      } catch (error) {
        await instance.stop().catch(() => {});
        if (this.#current === instance && previous === undefined) this.#current = undefined;
        this.#options.onError?.(error);
        await new Promise((resolve) => {
          this.#restartTimer = setTimeout(resolve, this.#nextBackoff());
        });
      }
    }
  }

  #nextBackoff(): number {
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
    return delay * (0.75 + Math.random() / 2);
  }

  #scheduleRestart(error: unknown): void {
    this.#options.onError?.(error);
    if (this.#stopped) return;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      if (!this.#stopped) this.#relist();
    }, this.#nextBackoff());
  }

  #relist(): void {
    if (this.#stopped) return;
    this.#startInstance().catch((error) => this.#options.onError?.(error));
  }
}
