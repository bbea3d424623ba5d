/**
 * Pinning the engine's kernel objects in bpffs so that traps outlive the agent process:
 * the programs stay attached and keep filling the ring buffer and the loss counters while
 * no agent runs, and the next engine adopts them instead of loading new ones.
 *
 * Layout under the pin root (one per kernel, e.g. `/sys/fs/bpf/kivebpf/<boot id>`):
 *
 * ```
 * maps-<maps id>/map_<name>                       every map of the object
 * maps-<maps id>/links-<programs id>/link_<prog>   the attached programs
 * ```
 *
 * The maps id hashes what the maps' contents mean (every map's type, key, value and size,
 * and the event and trap layouts), the programs id the object file and the program set. An
 * engine whose maps id matches adopts the maps (the trap map, the ring buffer with what
 * accumulated, the counters); if the programs id matches too it adopts the links, else it
 * attaches its own programs to the same maps and then removes the old links (an upgrade:
 * for a moment both run, so an access may be reported twice, never missed). A maps id that
 * differs (a layout change) gets a directory of its own; the old one is removed once the new
 * programs are attached. Directories appear complete or not at all: they are filled under a
 * temporary name and renamed.
 *
 * @module
 */
import { BpfLink, type BpfMap, type BpfObject, closeFd, openPinned } from "../bpf/mod.ts";

/** What an engine found and did under its pin root. */
export interface PinState {
  /** The pin root, e.g. `/sys/fs/bpf/kivebpf/<boot id>`. */
  root: string;
  /** The maps directory in use. */
  mapsDir: string;
  /** The links directory in use. */
  linksDir: string;
  /** Maps came from pins (their contents are a predecessor's). */
  adoptedMaps: boolean;
  /** Links came from pins (no program was attached by this engine). */
  adoptedLinks: boolean;
  /** Directories of older layouts or programs, removed once this engine is attached. */
  stale: string[];
}

/** A 64-bit FNV-1a as two 32-bit halves: names directories, not a security boundary. */
function fingerprint(parts: (string | Uint8Array)[]): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  const encoder = new TextEncoder();
  for (const part of parts) {
    const bytes = typeof part === "string" ? encoder.encode(`${part}\0`) : part;
    for (let i = 0; i < bytes.length; i++) {
      a = Math.imul(a ^ bytes[i], 0x01000193);
      b = Math.imul(b ^ bytes[i], 0x01000193) ^ (b >>> 13);
    }
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}

/**
 * A map's name without the object's: internal maps are named after the object file
 * (`trap_bpf.bss`), which an upgrade may rename.
 */
function mapName(map: BpfMap): string {
  const name = map.name;
  return name.includes(".") ? name.slice(name.lastIndexOf(".") + 1) : name;
}

/** The file name of a map's pin (bpffs refuses dots). */
function mapPinName(map: BpfMap): string {
  return `map_${mapName(map).replace(/[^A-Za-z0-9_]/g, "_")}`;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function listDirs(dir: string, prefix: string): string[] {
  try {
    return [...Deno.readDirSync(dir)]
      .filter((e) => e.isDirectory && e.name.startsWith(prefix))
      .map((e) => `${dir}/${e.name}`);
  } catch {
    return [];
  }
}

/**
 * Before load: picks the directories for this object and reuses the pinned maps of a
 * compatible predecessor. Returns whether the links can be adopted too (then the caller
 * loads no program and opens the links with {@linkcode adoptLinks}).
 *
 * @param root the pin root
 * @param obj the opened, not yet loaded object, maps already sized
 * @param objectBytes the object file, for the programs id
 * @param programs the programs this engine runs
 */
export function preparePins(
  root: string,
  obj: BpfObject,
  objectBytes: Uint8Array,
  programs: readonly string[],
): PinState {
  const maps = obj.maps();
  const mapsId = fingerprint([
    ...maps.flatMap((m) => [mapName(m), `${m.type}/${m.keySize}/${m.valueSize}/${m.maxEntries}`]),
    ...["trap_event", "trap_value", "trap_key", "trap_config"].map((name) =>
      JSON.stringify(obj.structLayout(name))
    ),
  ]);
  const programsId = fingerprint([objectBytes, ...programs]);
  const mapsDir = `${root}/maps-${mapsId}`;
  const linksDir = `${mapsDir}/links-${programsId}`;
  const state: PinState = {
    root,
    mapsDir,
    linksDir,
    adoptedMaps: false,
    adoptedLinks: false,
    stale: listDirs(root, "maps-").filter((d) => d !== mapsDir),
  };
  if (!maps.every((m) => exists(`${mapsDir}/${mapPinName(m)}`))) return state;
  for (const map of maps) {
    const fd = openPinned(`${mapsDir}/${mapPinName(map)}`);
    try {
      map.reuseFd(fd);
    } finally {
      closeFd(fd);
    }
  }
  state.adoptedMaps = true;
  state.adoptedLinks = programs.every((p) => exists(`${linksDir}/link_${p}`));
  state.stale.push(...listDirs(mapsDir, "links-").filter((d) => d !== linksDir));
  return state;
}

/** Opens the pinned links of {@linkcode preparePins}'s directory. */
export function adoptLinks(
  state: PinState,
  obj: BpfObject,
  programs: readonly string[],
): BpfLink[] {
  return programs.map((p) => BpfLink.openPinned(obj, `${state.linksDir}/link_${p}`, p));
}

/**
 * After load and attach: pins what is new (the maps unless adopted, the links unless
 * adopted), each directory filled under a temporary name and renamed into place, then
 * removes the stale directories, whose programs this engine now replaces.
 *
 * @throws {Deno.errors.AlreadyExists} when another engine pinned the same directory first
 *   (this one then runs unpinned; its temporary directory is removed)
 * @throws {BpfError} when bpffs refuses a pin (the root is not on bpffs)
 */
export function commitPins(state: PinState, obj: BpfObject, links: readonly BpfLink[]): void {
  Deno.mkdirSync(state.root, { recursive: true });
  // bpffs refuses names with a dot.
  const tmp = `${state.root}/tmp-${crypto.randomUUID()}`;
  Deno.mkdirSync(tmp);
  try {
    if (!state.adoptedMaps) {
      for (const map of obj.maps()) map.pin(`${tmp}/${mapPinName(map)}`);
    }
    if (!state.adoptedLinks) {
      const linksName = state.linksDir.slice(state.mapsDir.length + 1);
      Deno.mkdirSync(`${tmp}/${linksName}`);
      for (const link of links) link.pin(`${tmp}/${linksName}/link_${link.program}`);
      if (state.adoptedMaps) Deno.renameSync(`${tmp}/${linksName}`, state.linksDir);
    }
    if (!state.adoptedMaps) Deno.renameSync(tmp, state.mapsDir);
  } finally {
    removePinDir(tmp);
  }
  for (const dir of state.stale) removePinDir(dir);
}

/**
 * Removes a pin directory: unlinking a link's pin detaches its program once no process
 * holds the link; unlinking a map's pin frees it once nothing uses it.
 */
export function removePinDir(dir: string): void {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
