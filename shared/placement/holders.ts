/**
 * Who holds what right now, as plan.ts reads it: for each stream, the first live member
 * (in the membership view's order) whose heartbeat lists it, and every holder in that
 * order for the few streams listed more than once (by two members, or twice by one).
 * PURE from the caller's side: catalog streams are kept by position in an array
 * (./catalog-index.ts), with each held list's positions cached on the identity of that
 * immutable list, so unchanged lists cost nothing again; streams outside the catalog
 * in a map.
 *
 * Guarantees: `first(k, id)` and `all(id)` are what a walk over every live member's held
 * list would give. Does not: judge liveness (the caller passes live members only), nor
 * see a held list changed in place (read-only by contract).
 */
import type { LiveMember } from "../member-state.js";
import type { StreamId } from "../types.js";
import type { CatalogIndex } from "./catalog-index.js";

export interface Holders {
  /** The first holder of stream `id` at catalog position `k` (−1: not in the catalog). */
  first(k: number, id: StreamId): string | undefined;
  /** Every holder, in order, of a stream listed more than once; undefined otherwise. */
  all(id: StreamId): string[] | undefined;
  /** Whether any stream is listed more than once. */
  readonly shared: boolean;
}

export function holdersOf(live: readonly LiveMember[], ix: CatalogIndex): Holders {
  const { ids } = ix;
  const holder = new Int32Array(ids.length).fill(-1);
  const many = new Map<StreamId, string[]>();
  const outside = new Map<StreamId, string>();
  for (let x = 0; x < live.length; x++) {
    const m = live[x]!;
    const list = m.hb.held;
    const at = ix.heldPositions(list, m.id);
    for (let y = 0; y < list.length; y++) {
      const k = at[y]!;
      let before: string | undefined;
      let id: StreamId;
      if (k >= 0) {
        const h = holder[k]!;
        if (h === -1) {
          holder[k] = x;
          continue;
        }
        before = live[h]!.id;
        id = ids[k]!;
      } else {
        id = list[y]!;
        before = outside.get(id);
        if (before === undefined) {
          outside.set(id, m.id);
          continue;
        }
      }
      const all = many.get(id);
      if (all) all.push(m.id);
      else many.set(id, [before, m.id]);
    }
  }
  return {
    first: (k, id) => {
      if (k < 0) return outside.size > 0 ? outside.get(id) : undefined;
      const h = holder[k]!;
      return h < 0 ? undefined : live[h]!.id;
    },
    all: (id) => (many.size > 0 ? many.get(id) : undefined),
    shared: many.size > 0,
  };
}
