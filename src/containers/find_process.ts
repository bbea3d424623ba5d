/**
 * Finds a container's init process from its container id, for any runtime that puts the id in
 * the container's cgroup path (containerd, CRI-O, runc, Docker), with the cgroup v1 hybrid
 * layout and with cgroup v2.
 *
 * The agent must see the host's procfs (hostPID, `procRoot`) and read cgroup paths in the host's
 * cgroup namespace: in a cgroup namespace of its own, `/proc/<pid>/cgroup` shows other
 * containers' paths as `/../..`-relative ones, which still identify the container and its init,
 * but not its cgroup directory, so `cgroupId` is left undefined (the mount namespace id still
 * works). On a hybrid host a runtime may use only the v1 controllers; the container's cgroup v2
 * id is then undefined too, since every such process shares the v2 group of its runtime.
 *
 * @module
 */

/** A running container's init process and the ids kernel events carry. */
export interface ContainerProcess {
  /** The container id, without a `containerd://` style scheme. */
  containerId: string;
  /** The container's init process, as the host sees it. */
  pid: number;
  /**
   * The container's cgroup v2 path, relative to the cgroup2 mount (from the `0::` line of
   * `/proc/<pid>/cgroup`), or undefined when the process is not in a cgroup v2 group of its
   * own (a hybrid host whose runtime only uses the v1 controllers).
   */
  cgroupPath?: string;
  /**
   * The cgroup v2 id (inode of the cgroup2 directory): what `bpf_get_current_cgroup_id()`
   * returns. Undefined when `cgroupPath` is, or when the directory cannot be found (the agent
   * runs in a cgroup namespace of its own and sees a path starting with `/..`).
   */
  cgroupId?: bigint;
  /** The mount namespace id (inode of `/proc/<pid>/ns/mnt`). */
  mntNs: number;
}

/** Where procfs and cgroupfs are mounted. */
export interface FindProcessOptions {
  /** The host's procfs. Default `/proc` (a pod with hostPID may mount it at `/host/proc`). */
  procRoot?: string;
  /**
   * Where the host's /sys/fs/cgroup is mounted, or its cgroup2 mount: `unified/` below it is
   * used when it is a hybrid layout. Default: `/sys/fs/cgroup` on a cgroup v2 host, `/sys/fs/cgroup/unified`
   * on a hybrid one.
   */
  cgroupRoot?: string;
}

/**
 * Strips a CRI scheme (`containerd://`, `cri-o://`, `docker://`) from a container id as pods
 * report it in `status.containerStatuses[].containerID`.
 *
 * @example
 * ```ts
 * parseContainerId("containerd://0f3a..."); // "0f3a..."
 * ```
 *
 * @param id With or without a scheme.
 * @returns The bare id.
 * @throws {TypeError} when the id is empty or has characters a runtime would not put in an id
 */
export function parseContainerId(id: string): string {
  const bare = id.replace(/^[a-z][a-z0-9+.-]*:\/\//, "");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(bare)) {
    throw new TypeError(`Container id "${id}" is not a runtime's container id`);
  }
  return bare;
}

/**
 * The container ids a cgroup path could belong to. A component names a container when it is
 * the id itself (cgroupfs drivers: `/kubepods/besteffort/pod<uid>/<id>`, runc's `/<id>`,
 * `/docker/<id>`), or ends with `-<id>` or `:<id>`, optionally followed by `.scope` (systemd
 * drivers: `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`, and
 * `kubepods-...:cri-containerd:<id>` written literally). CRI-O's monitor
 * (`crio-conmon-<id>`) is not in the container and names none.
 *
 * @param path A path from `/proc/<pid>/cgroup`.
 * @returns The candidate ids, to be checked against the wanted ones.
 */
export function cgroupPathIds(path: string): string[] {
  const ids: string[] = [];
  for (const component of path.split("/")) {
    if (component === "" || component === ".." || component.startsWith("crio-conmon-")) continue;
    ids.push(component);
    const base = component.endsWith(".scope") ? component.slice(0, -".scope".length) : component;
    if (base !== component) ids.push(base);
    for (const separator of ["-", ":"]) {
      const at = base.lastIndexOf(separator);
      if (at >= 0 && at < base.length - 1) ids.push(base.slice(at + 1));
    }
  }
  return ids;
}

/**
 * Finds the init process of one container. See {@linkcode findProcesses}.
 *
 * @example
 * ```ts
 * const found = await findProcess("containerd://0f3a...");
 * if (found) console.log(found.pid, found.cgroupId, found.mntNs);
 * ```
 *
 * @param containerId The id, with or without its scheme.
 * @param options Where procfs and cgroupfs are.
 * @returns The process, or undefined when no running process is in that container.
 */
export async function findProcess(
  containerId: string,
  options: FindProcessOptions = {},
): Promise<ContainerProcess | undefined> {
  return (await findProcesses([containerId], options)).get(parseContainerId(containerId));
}

/**
 * Finds the init processes of many containers with one scan of procfs.
 *
 * A process is in a container when a line of its `/proc/<pid>/cgroup` names the container id
 * (see {@linkcode cgroupPathIds}). The init is the process whose parent is not in the same
 * container (the lowest pid is not: pids wrap around). `runc exec` processes also have a parent
 * outside, so among those the one that is pid 1 of its pid namespace wins, then the oldest.
 *
 * @param containerIds Ids, with or without their scheme.
 * @param options Where procfs and cgroupfs are.
 * @returns The processes found, by bare container id; ids without a process are absent.
 * @throws {TypeError} when an id is not a container id
 * @throws {Error} when `procRoot` cannot be listed
 */
export async function findProcesses(
  containerIds: Iterable<string>,
  options: FindProcessOptions = {},
): Promise<Map<string, ContainerProcess>> {
  const procRoot = options.procRoot ?? "/proc";
  const wanted = new Set([...containerIds].map(parseContainerId));
  const found = new Map<string, ContainerProcess>();
  if (wanted.size === 0) return found;

  const members = new Map<string, { pid: number; v2Path?: string }[]>();
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(procRoot));
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot list the processes in "${procRoot}": ${why}`, { cause: error });
  }
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    const lines = await readOrUndefined(`${procRoot}/${pid}/cgroup`);
    if (lines === undefined) continue;
    const match = matchCgroups(lines, wanted);
    if (!match) continue;
    const list = members.get(match.id) ?? [];
    list.push({ pid, v2Path: match.v2Path });
    members.set(match.id, list);
  }

  let cgroupRoot: string | undefined;
  for (const [id, processes] of members) {
    const init = await pickInit(procRoot, processes.map((p) => p.pid));
    if (init === undefined) continue;
    let mntNs: number;
    try {
      mntNs = (await Deno.stat(`${procRoot}/${init}/ns/mnt`)).ino ?? 0;
    } catch {
      continue; // exited meanwhile
    }
    const cgroupPath = processes.find((p) => p.pid === init)?.v2Path;
    cgroupRoot ??= await defaultCgroupRoot(options.cgroupRoot);
    found.set(id, {
      containerId: id,
      pid: init,
      cgroupPath,
      cgroupId: cgroupPath ? await cgroupIdOf(cgroupRoot, cgroupPath) : undefined,
      mntNs,
    });
  }
  return found;
}

/**
 * The cgroup v2 id of a cgroup path, or undefined when it cannot be found.
 *
 * @param cgroupRoot Where cgroup2 is mounted.
 * @param path The path from a `0::` line of `/proc/<pid>/cgroup`.
 */
export async function cgroupIdOf(cgroupRoot: string, path: string): Promise<bigint | undefined> {
  if (path.split("/").includes("..")) return undefined; // outside our cgroup namespace
  try {
    const info = await Deno.stat(`${cgroupRoot}${path}`);
    return info.isDirectory && info.ino !== null ? BigInt(info.ino) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `base` when it is a cgroup2 mount, else the hybrid layout's `base/unified`. A pod mounts the
 * host's /sys/fs/cgroup elsewhere, hence the base.
 */
async function defaultCgroupRoot(base = "/sys/fs/cgroup"): Promise<string> {
  for (const root of [base, `${base}/unified`]) {
    try {
      await Deno.stat(`${root}/cgroup.controllers`);
      return root;
    } catch {
      // not cgroup2
    }
  }
  return base;
}

/** The wanted container a `/proc/<pid>/cgroup` names, and the process's cgroup v2 path. */
function matchCgroups(
  text: string,
  wanted: Set<string>,
): { id: string; v2Path?: string } | undefined {
  let id: string | undefined;
  let v2Path: string | undefined;
  let v2Named = false;
  for (const line of text.split("\n")) {
    // hierarchy-ID:controller-list:cgroup-path; the path may itself contain ':'.
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const path = line.slice(second + 1);
    const named = cgroupPathIds(path).find((candidate) => wanted.has(candidate));
    if (line.startsWith("0::")) {
      v2Path = path;
      v2Named = named !== undefined;
    }
    id ??= named;
  }
  if (id === undefined) return undefined;
  // A v2 path that does not name the container (hybrid host, v1-only runtime) is the host's
  // or the runtime's group, whose id would mislabel events.
  return { id, v2Path: v2Named ? v2Path : undefined };
}

/** The container's init among its processes; see {@linkcode findProcesses}. */
async function pickInit(procRoot: string, pids: number[]): Promise<number | undefined> {
  const inContainer = new Set(pids);
  const candidates: { pid: number; nsInit: boolean; start: bigint }[] = [];
  for (const pid of pids) {
    const status = await readOrUndefined(`${procRoot}/${pid}/status`);
    const stat = await readOrUndefined(`${procRoot}/${pid}/stat`);
    if (status === undefined || stat === undefined) continue;
    const ppid = Number(/^PPid:\s*(\d+)/m.exec(status)?.[1]);
    if (inContainer.has(ppid)) continue;
    const nspids = /^NSpid:\s*([\d\s]+)$/m.exec(status)?.[1].trim().split(/\s+/) ?? [];
    // Fields after "(comm)": state is field 3, starttime field 22 (proc_pid_stat(5)).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    candidates.push({
      pid,
      nsInit: nspids.length > 1 && nspids[nspids.length - 1] === "1",
      start: BigInt(fields[19] ?? "0"),
    });
  }
  candidates.sort((a, b) =>
    Number(b.nsInit) - Number(a.nsInit) || (a.start < b.start ? -1 : a.start > b.start ? 1 : 0) ||
    a.pid - b.pid
  );
  return candidates[0]?.pid;
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined; // the process exited, or is not ours to read
  }
}
