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
} from "@kubernetes/client-node";
import { NativeWatch, type NativeWatchOptions } from "./native_watch.ts";

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
  /**
   * What of an object its consumer acts on: an update that leaves it the same (a status
   * write, say) does not call `onChange`. The cache is updated either way.
   */
  signature?: (object: T) => string;
  /** Called with errors before each restart, for logs and metrics. */
  onError?: (error: unknown) => void;
  /** Relist from scratch this often. Default 300 s. */
  relistSeconds?: number;
  /** First restart delay after an error; doubles up to 8 s. Default 500 ms. */
  backoffMs?: number;
  /** A list that has not answered after this long counts as failed. Default 30 s. */
  listTimeoutMs?: number;
  /** Server-side watch timeouts and the silence grace (tests shorten them). */
  watch?: NativeWatchOptions;
}

/** One ListWatch and what happened to it before it was put in service. */
interface Instance<T extends KubernetesObject> {
  listWatch: ListWatch<T>;
  /** Set once start() returned with a list: from then on its errors restart the watcher. */
  live: boolean;
  /** An error seen while starting (a failed list or watch), which makes the start fail. */
  startError?: unknown;
}

// Low enough that a watch is back within seconds of an API server outage ending; the jitter
// spreads a fleet's retries.
const MAX_BACKOFF_MS = 8_000;

/** Keeps a cache of one resource current. */
export class ResourceWatcher<T extends KubernetesObject> {
  readonly #kubeConfig: KubeConfig;
  readonly #options: ResourceWatcherOptions<T>;
  #current?: Instance<T>;
  #synced = false;
  /** The last signature seen per uid (with `signature`). */
  readonly #signatures = new Map<string, string>();
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
    return this.#current?.listWatch.list() ?? [];
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
    await this.#current?.listWatch.stop();
  }

  #makeInstance(): Instance<T> {
    const listWatch = new ListWatch<T>(
      this.#options.path,
      // Not client-node's Watch: under Deno its idle abort and dropped connections never end
      // the watch, which then hears nothing until the next relist (see native_watch.ts).
      new NativeWatch(this.#kubeConfig, this.#options.watch) as never,
      () => this.#boundedList(),
      false,
      this.#options.labelSelector,
      this.#options.fieldSelector,
    );
    const instance: Instance<T> = { listWatch, live: false };
    const { signature } = this.#options;
    const seen = this.#signatures;
    const changed = (object: T, kind: "add" | "update" | "delete") => {
      // Signatures are recorded also from a list still starting (its adds), so that the first
      // update after it is judged against them.
      const uid = object?.metadata?.uid;
      let same = false;
      if (signature && uid) {
        if (kind === "delete") seen.delete(uid);
        else {
          const next = signature(object);
          same = kind === "update" && seen.get(uid) === next;
          seen.set(uid, next);
        }
      }
      if (this.#current === instance && !same) this.#options.onChange();
    };
    listWatch.on("add", (object) => changed(object, "add"));
    listWatch.on("update", (object) => changed(object, "update"));
    listWatch.on("delete", (object) => changed(object, "delete"));
    listWatch.on("error", (error) => {
      // ListWatch does not retry after an error; a live instance is replaced by a relist, one
      // still starting fails its start (which retries with backoff).
      if (!instance.live) instance.startError ??= error;
      else if (this.#current === instance) this.#scheduleRestart(error);
    });
    return instance;
  }

  async #startInstance(): Promise<void> {
    while (!this.#stopped) {
      const instance = this.#makeInstance();
      const previous = this.#current;
      try {
        await instance.listWatch.start();
        // ListWatch.start() also returns when its list failed (it only emits "error"), with no
        // resource version: swapping then would hand readers an empty cache during an outage.
        if (instance.startError !== undefined) throw instance.startError;
        if (!instance.listWatch.latestResourceVersion()) {
          throw new Error(`list of ${this.#options.path} returned no resourceVersion`);
        }
        instance.live = true;
        this.#current = instance;
        this.#backoffMs = this.#options.backoffMs ?? 500;
        await previous?.listWatch.stop();
        this.#synced = true;
        this.#options.onChange();
        return;
      } catch (error) {
        await instance.listWatch.stop().catch(() => {});
        this.#options.onError?.(error);
        await new Promise((resolve) => {
          this.#restartTimer = setTimeout(resolve, this.#nextBackoff());
        });
      }
    }
  }

  /** The caller's list, given up after listTimeoutMs: a hung API server must not hang a relist. */
  #boundedList(): Promise<KubernetesListObject<T>> {
    const ms = this.#options.listTimeoutMs ?? 30_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`list of ${this.#options.path} gave no answer within ${ms} ms`)),
        ms,
      );
    });
    return Promise.race([this.#options.list(), timeout]).finally(() => clearTimeout(timer));
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
