/**
 * Which host ids the files and directories the agent creates in a container get: the owner a
 * trap asks for (ids inside the container) mapped through the container's user namespace,
 * and the container's root for everything created without an owner. Private to
 * src/containers/.
 *
 * @module
 */
import { errno, libc, O } from "./_libc.ts";
import { classify, fail, type Failure, isFailure, openPlain } from "./_fs.ts";

/** Host ids to give created files and directories. */
export interface IdPlan {
  /** For the trap file, or undefined to keep the creator's (host root). */
  file?: { uid: number; gid: number };
  /** For created directories. */
  dir?: { uid: number; gid: number };
}

/**
 * Maps a trap's owner through `/proc/<pid>/{uid,gid}_map`.
 *
 * @param proc An fd of `/proc/<pid>`.
 * @param owner The owner inside the container, or undefined for none.
 */
export function idMapping(
  proc: number,
  owner: { uid: number; gid: number } | undefined,
): IdPlan | Failure {
  const uidMap = readIdMap(proc, "uid_map");
  if (isFailure(uidMap)) return uidMap;
  const gidMap = readIdMap(proc, "gid_map");
  if (isFailure(gidMap)) return gidMap;
  const identity = isIdentity(uidMap) && isIdentity(gidMap);
  const rootIds = { uid: mapId(uidMap, 0), gid: mapId(gidMap, 0) };
  const containerRoot = !identity && rootIds.uid !== undefined && rootIds.gid !== undefined
    ? { uid: rootIds.uid, gid: rootIds.gid }
    : undefined;
  if (!owner) return { file: containerRoot, dir: containerRoot };
  const uid = mapId(uidMap, owner.uid);
  const gid = mapId(gidMap, owner.gid);
  if (uid === undefined || gid === undefined) {
    return fail(
      "Other",
      `Cannot give the trap file owner ${owner.uid}:${owner.gid}: ` +
        `not mapped in the container's user namespace`,
    );
  }
  return { file: { uid, gid }, dir: containerRoot };
}

type IdMap = { inside: number; outside: number; count: number }[];

function readIdMap(proc: number, file: string): IdMap | Failure {
  const fd = openPlain(proc, file, O.O_RDONLY);
  if (fd < 0) return { problem: classify(-fd, `Cannot read /proc/<pid>/${file}`) };
  const lib = libc();
  try {
    const buf = new Uint8Array(4096);
    const n = Number(lib.read(fd, buf, BigInt(buf.length)));
    if (n < 0) return { problem: classify(errno(), `Cannot read /proc/<pid>/${file}`) };
    return new TextDecoder().decode(buf.subarray(0, n)).split("\n")
      .map((line) => line.trim().split(/\s+/).map(Number))
      .filter((fields) => fields.length === 3 && fields.every(Number.isInteger))
      .map(([inside, outside, count]) => ({ inside, outside, count }));
  } finally {
    lib.close(fd);
  }
}

function isIdentity(map: IdMap): boolean {
  return map.length === 1 && map[0].inside === 0 && map[0].outside === 0 &&
    map[0].count === 4294967295;
}

function mapId(map: IdMap, id: number): number | undefined {
  const range = map.find((r) => id >= r.inside && id < r.inside + r.count);
  return range ? range.outside + (id - range.inside) : undefined;
}
