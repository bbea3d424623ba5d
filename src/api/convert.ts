/**
 * Lossless conversion between the served versions of `KivePolicy`.
 *
 * v2alpha1 is a superset of v1. When a v2alpha1 object is read as v1, the fields v1 cannot hold
 * travel in the annotation {@linkcode V2_FIELDS_ANNOTATION}, keyed by trap index and path; when
 * that v1 object is written back they are restored, so a v1 client never erases them. Everything
 * else (metadata, status, fields we do not know) is passed through untouched.
 *
 * @module
 */
import { type ApiVersion, GROUP, V2_ONLY_TRAP_FIELDS, VERSIONS } from "./policy.ts";

/** Annotation on v1 objects holding the v2alpha1-only trap fields. */
export const V2_FIELDS_ANNOTATION = `${GROUP}/v2alpha1-traps`;

/** A JSON object as parsed, before any schema has checked its fields. */
export type JsonObject = Record<string, unknown>;

interface StashedTrap {
  index: number;
  path: unknown;
  fields: JsonObject;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Converts a policy object to another served version.
 *
 * @param object A `KivePolicy` in any served version, as JSON.
 * @param toVersion The version wanted.
 * @returns A new object; `object` is not modified.
 * @throws {TypeError} When the object's apiVersion or the target is not a served version.
 */
export function convertPolicy(object: JsonObject, toVersion: ApiVersion): JsonObject {
  const fromVersion = versionOf(object.apiVersion);
  if (!(VERSIONS as readonly string[]).includes(toVersion)) {
    throw new TypeError(`Cannot convert to "${toVersion}": served versions are ${VERSIONS}`);
  }
  const copy = structuredClone(object);
  copy.apiVersion = `${GROUP}/${toVersion}`;
  if (fromVersion === toVersion) return copy;
  return toVersion === "v1" ? stashV2Fields(copy) : restoreV2Fields(copy);
}

function versionOf(apiVersion: unknown): ApiVersion {
  const [group, version] = String(apiVersion).split("/");
  if (group !== GROUP || !(VERSIONS as readonly string[]).includes(version)) {
    throw new TypeError(
      `Cannot convert apiVersion "${apiVersion}": expected ${GROUP}/ followed by one of ${VERSIONS}`,
    );
  }
  return version as ApiVersion;
}

function trapsOf(object: JsonObject): JsonObject[] {
  const spec = object.spec;
  if (!isObject(spec) || !Array.isArray(spec.traps)) return [];
  return spec.traps.filter(isObject);
}

function annotationsOf(object: JsonObject): JsonObject {
  if (!isObject(object.metadata)) object.metadata = {};
  const metadata = object.metadata as JsonObject;
  if (!isObject(metadata.annotations)) metadata.annotations = {};
  return metadata.annotations as JsonObject;
}

function dropEmptyAnnotations(object: JsonObject): void {
  const metadata = object.metadata as JsonObject;
  if (isObject(metadata.annotations) && Object.keys(metadata.annotations).length === 0) {
    delete metadata.annotations;
  }
}

function stashV2Fields(object: JsonObject): JsonObject {
  const stash: StashedTrap[] = [];
  trapsOf(object).forEach((trap, index) => {
    const fields: JsonObject = {};
    for (const name of V2_ONLY_TRAP_FIELDS) {
      if (!(name in trap)) continue;
      // The default action is restored by the API server's defaulting; stashing it would only
      // add an annotation to every v1 read.
      if (!(name === "action" && trap[name] === "alert")) fields[name] = trap[name];
      delete trap[name];
    }
    if (Object.keys(fields).length > 0) stash.push({ index, path: trap.path, fields });
  });
  const annotations = annotationsOf(object);
  if (stash.length > 0) annotations[V2_FIELDS_ANNOTATION] = JSON.stringify(stash);
  else delete annotations[V2_FIELDS_ANNOTATION];
  dropEmptyAnnotations(object);
  return object;
}

function restoreV2Fields(object: JsonObject): JsonObject {
  const annotations = annotationsOf(object);
  const text = annotations[V2_FIELDS_ANNOTATION];
  delete annotations[V2_FIELDS_ANNOTATION];
  dropEmptyAnnotations(object);
  if (typeof text !== "string") return object;
  let stash: unknown;
  try {
    stash = JSON.parse(text);
  } catch {
    // A hand-edited, unreadable annotation cannot be restored; the v1 fields stay authoritative.
    return object;
  }
  if (!Array.isArray(stash)) return object;
  const traps = trapsOf(object);
  for (const entry of stash as StashedTrap[]) {
    const trap = traps[entry?.index];
    // A v1 client that reordered or edited traps invalidates the entry for that index.
    if (!trap || trap.path !== entry.path || !isObject(entry.fields)) continue;
    for (const name of V2_ONLY_TRAP_FIELDS) {
      if (name in entry.fields && !(name in trap)) trap[name] = entry.fields[name];
    }
  }
  return object;
}
