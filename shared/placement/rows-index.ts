/**
 * The leader's rows as plan.ts reads them: by catalog position (./catalog-index.ts), and
 * the ids of rows whose stream is no longer in the catalog. PURE from the caller's side:
 * the answer is what one pass over the rows would give; it is kept per rows map and
 * brought up to date from the rows' journal (the streams whose rows changed since the
 * version it was computed at: leader/store.ts keeps one for its mirror), so a tick after
 * a small write pays for what changed, not for every row.
 *
 * Guarantees: `rowAt[k]` is `rows.get(ids[k])` and `gone` the sorted ids of `rows` not in
 * the catalog, whenever the journal is true (equal versions: equal rows; `changedSince`
 * lists every stream whose row was set or deleted since, or answers undefined).
 * Does not: notice rows changed behind a journal that says otherwise; without a journal
 * it computes everything on every call.
 */
import type { StreamId } from "../types.js";
import type { CatalogIndex } from "./catalog-index.js";

/** What names a rows map's content (leader/store.ts LeaderState). */
export interface RowsJournal {
  /** Equal versions of one rows map mean equal rows. */
  readonly version: number;
  /** The streams whose rows were set or deleted since `version`; undefined if not known. */
  changedSince(version: number): readonly StreamId[] | undefined;
}

export interface RowsByPosition<R> {
  readonly rowAt: readonly (R | undefined)[];
  /** Ids of rows whose stream is not in the catalog, sorted. */
  readonly gone: readonly StreamId[];
}

interface Kept<R> {
  readonly ix: CatalogIndex;
  version: number;
  readonly rowAt: (R | undefined)[];
  readonly gone: Set<StreamId>;
}

const kept = new WeakMap<ReadonlyMap<StreamId, unknown>, Kept<unknown>>();

export function rowsByPosition<R>(rows: ReadonlyMap<StreamId, R>, ix: CatalogIndex, journal?: RowsJournal): RowsByPosition<R> {
  let k = kept.get(rows) as Kept<R> | undefined;
  const changed = k && journal && k.ix === ix ? journal.changedSince(k.version) : undefined;
  if (k && changed && journal) {
    for (const id of changed) {
      const at = ix.pos.get(id);
      const r = rows.get(id);
      if (at !== undefined) k.rowAt[at] = r;
      else if (r !== undefined) k.gone.add(id);
      else k.gone.delete(id);
    }
    k.version = journal.version;
  } else {
    k = { ix, version: journal?.version ?? NaN, rowAt: new Array<R | undefined>(ix.ids.length), gone: new Set() };
    for (const [id, r] of rows) {
      const at = ix.pos.get(id);
      if (at === undefined) k.gone.add(id);
      else k.rowAt[at] = r;
    }
    if (journal) kept.set(rows, k as Kept<unknown>);
  }
  return { rowAt: k.rowAt, gone: k.gone.size === 0 ? [] : [...k.gone].sort() };
}

/**
 * A rows map's journal, kept by its writer (leader/store.ts's mirror): each change of
 * version and the streams it set or deleted, the last `keep` of them.
 */
export class RowsLog {
  private readonly entries: { readonly before: number; readonly after: number; readonly streams: readonly StreamId[] }[] = [];
  constructor(private readonly keep = 64) {}

  record(before: number, after: number, streams: readonly StreamId[]): void {
    this.entries.push({ before, after, streams });
    if (this.entries.length > this.keep) this.entries.splice(0, this.entries.length - this.keep);
  }

  /** The journal of the map at `version` (its current one when read). */
  as(version: number): RowsJournal {
    const entries = this.entries;
    return {
      version,
      changedSince(since) {
        // Everything recorded after `since`, up to the newest (a superset is harmless).
        const out: StreamId[] = [];
        for (let i = entries.length - 1; i >= 0; i--) {
          const e = entries[i]!;
          if (e.after === since) return out;
          for (const s of e.streams) out.push(s);
          if (e.before === since) return out;
        }
        return entries.length === 0 && since === version ? out : undefined;
      },
    };
  }
}
