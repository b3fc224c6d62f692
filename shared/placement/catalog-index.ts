/**
 * What plan.ts derives from a catalog, computed once per catalog instead of once per call.
 * PURE from the caller's side: the same answers plan.ts would compute itself, the index
 * cached on the identity of the (immutable) catalog array, so a leader whose catalog did
 * not change pays for none of it again; and the metadata comparison, without serialising.
 *
 * Positions: plan.ts works on streams by their position in the catalog (the distinct ids
 * in the order they first appear), with arrays instead of maps keyed by id. The index
 * also keeps the positions of the ids each member's held list names: a list that comes
 * back as the same (immutable) array costs nothing again, and a new list is matched in
 * order against the member's last one (heartbeats list what a worker holds in a stable
 * order), so only ids that list did not have are looked up.
 *
 * Guarantees: `index(catalog).byId` is `new Map(catalog.map((s) => [s.id, s]))` (the last
 * of duplicate ids wins), `ids` its keys in that map's order, `pos` the inverse of `ids`,
 * `streams[k]` is `byId.get(ids[k])`, `sortedIds` the keys in the default sort order
 * (UTF-16 code units) and `sorted[r]` the position of `sortedIds[r]`; `hashes()[k]` is
 * hashString(ids[k]); `heldPositions(list)[x]` is `pos.get(list[x]) ?? -1`.
 * `sameMetadata(a, b)` is `JSON.stringify(a) === JSON.stringify(b)`. Does not: see a
 * catalog array (or a held list) changed in place: both are read-only by contract
 * (shared/catalog.ts makes a new catalog on every read, heartbeats new lists).
 */
import type { Stream, StreamId } from "../types.js";
import { hashString } from "./hash.js";

export interface CatalogIndex {
  readonly byId: ReadonlyMap<StreamId, Stream>;
  /** Distinct ids, sorted. */
  readonly sortedIds: readonly StreamId[];
  /** Distinct ids by position (first appearance in the catalog). */
  readonly ids: readonly StreamId[];
  /** The stream at each position (the last of duplicate ids). */
  readonly streams: readonly Stream[];
  /** Position of each id. */
  readonly pos: ReadonlyMap<StreamId, number>;
  /** Positions in sorted id order. */
  readonly sorted: Int32Array;
  /** hashString of each position's id (./hash.ts), computed on first use. */
  hashes(): Float64Array;
  /** Positions of the ids a held list names (−1: not in the catalog), kept per list and member. */
  heldPositions(list: readonly StreamId[], member: string): Int32Array;
}

const indexes = new WeakMap<readonly Stream[], CatalogIndex>();
/** How far ahead in a member's last held list an id is looked for (ids it dropped). */
const LOOKAHEAD = 16;

export function catalogIndex(catalog: readonly Stream[]): CatalogIndex {
  let ix = indexes.get(catalog);
  if (!ix) {
    ix = buildIndex(catalog);
    indexes.set(catalog, ix);
  }
  return ix;
}

function buildIndex(catalog: readonly Stream[]): CatalogIndex {
  const byId = new Map(catalog.map((s) => [s.id, s]));
  const ids = [...byId.keys()];
  const streams = [...byId.values()];
  const pos = new Map(ids.map((id, k) => [id, k]));
  const order = ids.map((_, k) => k).sort((a, b) => (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0));
  const sorted = Int32Array.from(order);
  let hashes: Float64Array | undefined;
  const held = new WeakMap<readonly StreamId[], Int32Array>();
  const last = new Map<string, { readonly list: readonly StreamId[]; readonly at: Int32Array }>();
  return {
    byId,
    sortedIds: order.map((k) => ids[k]!),
    ids,
    streams,
    pos,
    sorted,
    hashes: () => (hashes ??= Float64Array.from(ids, hashString)),
    heldPositions(list, member) {
      let p = held.get(list);
      if (!p) {
        p = new Int32Array(list.length);
        const before = last.get(member);
        const old = before?.list ?? [];
        // Walk the last list alongside: an id found a few places ahead keeps its position.
        let x = 0;
        for (let y = 0; y < list.length; y++) {
          const id = list[y]!;
          let j = x;
          while (j < old.length && j - x < LOOKAHEAD && old[j] !== id) j++;
          if (j < old.length && old[j] === id) {
            p[y] = before!.at[j]!;
            x = j + 1;
          } else p[y] = pos.get(id) ?? -1;
        }
        held.set(list, p);
      }
      last.set(member, { list, at: p });
      return p;
    },
  };
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
