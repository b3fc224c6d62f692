/**
 * What plan.ts derives from a catalog, computed once per catalog instead of once per call.
 * PURE from the caller's side: the same answers plan.ts would compute itself, cached on the
 * identity of immutable values (a catalog array, a metadata object), so a leader whose
 * catalog did not change pays for none of it again.
 *
 * Guarantees: `index(catalog).byId` is `new Map(catalog.map((s) => [s.id, s]))` (the last
 * of duplicate ids wins) and `sortedIds` its keys in the default sort order (UTF-16 code
 * units); `sameMetadata(a, b)` is `JSON.stringify(a) === JSON.stringify(b)`. Does not: see
 * a catalog array or metadata object changed in place (they are read-only by contract:
 * shared/catalog.ts makes new ones on every read).
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

const texts = new WeakMap<object, string>();

/** JSON.stringify(v), remembered per object. */
function text(v: unknown): string {
  if (typeof v !== "object" || v === null) return JSON.stringify(v);
  let t = texts.get(v);
  if (t === undefined) texts.set(v, (t = JSON.stringify(v)));
  return t;
}

/** Whether two metadata values serialise alike (as plan.ts compares a row with its stream). */
export function sameMetadata(a: unknown, b: unknown): boolean {
  return a === b || text(a) === text(b);
}
