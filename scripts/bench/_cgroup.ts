/**
 * The "trapped container" of phase CG: a cgroup2 directory made for the run, whose id (the
 * directory's inode number, what `bpf_get_current_cgroup_id()` returns for its tasks) the
 * agent's cgroup filter is given.
 *
 * @module
 */

/** A cgroup2 directory made for the run. */
export interface Cgroup {
  /** Its directory, e.g. /sys/fs/cgroup/unified/kivebpf-bench-trapped-1234. */
  path: string;
  /** Its cgroup v2 id. */
  id: bigint;
  /** Removes the directory (its processes must have exited); retries while it is busy. */
  remove(): Promise<void>;
}

/**
 * Where cgroup2 is mounted: /sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified (or
 * wherever) on a hybrid one. From /proc/self/mountinfo, the first cgroup2 mount of its root.
 *
 * @returns the mount point, or null without cgroup2
 */
export function cgroup2Mount(): string | null {
  const text = Deno.readTextFileSync("/proc/self/mountinfo");
  for (const line of text.split("\n")) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    const [left, right] = line.split(" - ");
    if (!right || right.split(" ")[0] !== "cgroup2") continue;
    const fields = left.split(" ");
    if (fields[3] !== "/") continue;
    return fields[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  }
  return null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Creates a cgroup2 directory `<mount>/<name>-<pid>` (the pid keeps two runs apart).
 *
 * @param name the directory's name, before the pid
 * @returns the cgroup
 * @throws {Error} without cgroup2, or when the directory cannot be made
 */
export async function createCgroup(name: string): Promise<Cgroup> {
  const mount = cgroup2Mount();
  if (mount === null) throw new Error("no cgroup2 file system is mounted");
  const path = `${mount}/${name}-${Deno.pid}`;
  try {
    await Deno.mkdir(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) {
      throw new Error(`Cannot create the cgroup ${path}: ${String(error)}`, { cause: error });
    }
  }
  const ino = (await Deno.stat(path)).ino;
  if (ino === null) throw new Error(`No inode number for ${path}`);
  return {
    path,
    id: BigInt(ino),
    remove: () => removeCgroupDir(path),
  };
}

/**
 * Removes a cgroup directory, retrying while it is busy: a task that has exited and been reaped
 * may leave the cgroup a moment later. A directory that is already gone is fine.
 *
 * @param path the cgroup directory
 * @throws {Error} when it is still busy after about five seconds
 */
export async function removeCgroupDir(path: string): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      await Deno.remove(path);
      return;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      if (attempt >= 50) {
        throw new Error(`Cannot remove the cgroup ${path}: ${String(error)}`, { cause: error });
      }
      await sleep(100);
    }
  }
}
