/**
 * What plan.ts derives from a catalog, computed once per catalog instead of once per call.
 * PURE from the caller's side: the same answers plan.ts would compute itself, the index
 * cached on the identity of the (immutable) catalog array, so a leader whose catalog did
 * not change pays for none of it again; and the metadata comparison, without serialising.
 *
 * Guarantees: `index(catalog).byId` is `new Map(catalog.map((s) => [s.id, s]))` (the last
 * of duplicate ids wins) and `sortedIds` its keys in the default sort order (UTF-16 code
 * units); `sameMetadata(a, b)` is `JSON.stringify(a) === JSON.stringify(b)`. Does not: see
 * a catalog array changed in place (it is read-only by contract: shared/catalog.ts makes
 * a new one on every read).
 */
import type { Stream, StreamId } from "../types.js";

export interface CatalogIndex {
  readonly byId: ReadonlyMap<StreamId, Stream>;
  /** Distinct ids, sorted. */
  readonly sortedIds: readonly StreamId[];
}

const indexes = new WeakMap<readonly Stream[], CatalogIndex>();

export function catalogIndex(catalog: readonly Stream[]): CatalogIndex {
  let ix = indexes.get(catalog);
  if (!ix) {
    const byId = new Map(catalog.map((s) => [s.id, s]));
    ix = { byId, sortedIds: [...byId.keys()].sort() };
    indexes.set(catalog, ix);
  }
  return ix;
}

/**
 * Whether two metadata values serialise alike (as plan.ts compares a row with its stream):
 * `JSON.stringify(a) === JSON.stringify(b)`, without serialising flat objects of strings,
 * finite numbers, booleans and nulls (what catalog metadata is), compared key by key in
 * the order JSON.stringify writes them.
 */
export function sameMetadata(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  return flatEqual(a, b) ?? JSON.stringify(a) === JSON.stringify(b);
}

/** Equality of two flat objects of JSON scalars; undefined when either is something else. */
function flatEqual(a: unknown, b: unknown): boolean | undefined {
  if (!isPlain(a) || !isPlain(b)) return undefined;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  for (const k of ka) if (!isScalar(a[k])) return undefined;
  for (const k of kb) if (!isScalar(b[k])) return undefined;
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i] || a[ka[i]!] !== b[kb[i]!]) return false;
  return true;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A value JSON writes as itself: equal values, equal text (0 and -0 both write "0"). */
function isScalar(v: unknown): boolean {
  return typeof v === "string" || typeof v === "boolean" || v === null || (typeof v === "number" && Number.isFinite(v));
}
