/**
 * A decider's copy of the members' Redis heartbeats, kept current from the heartbeat feed
 * (shared/redis-scripts.ts FEED_READ): per member, its latest feed id (its progress mark
 * on the Redis channel) and its heartbeat as last fetched. Pure bookkeeping, no I/O.
 *
 * Guarantees: a member's heartbeat is taken again whenever a read brings it (its feed
 * entry said something new, or a whole read); a member whose heartbeat this copy never
 * got is fetched; a new Redis incarnation empties the copy; a member counts as present
 * while its last feed entry is younger than its heartbeat's TTL by Redis's own clock (feed
 * ids are Redis times; only two of them are compared, never with a local clock): what its
 * heartbeat key's TTL said before heartbeats lived in the cluster hash. It does not judge
 * liveness: the tracker dates progress (a new mark) on its own clock.
 */
import type { RawMember } from "./redis-protocol.js";
import type { Heartbeat } from "./types.js";

interface Item {
  hb: Heartbeat | undefined;
  /** Whether a read or a fetch brought its heartbeat (or said it has none). */
  fetched: boolean;
  /** Feed id of the member's latest heartbeat. */
  fid: string;
}

export interface FeedDelta {
  readonly incarnation: string;
  /** The whole feed was read. */
  readonly full: boolean;
  readonly ids: readonly string[];
  readonly feedIds: readonly string[];
  readonly changed: readonly boolean[];
  /** Per member, the heartbeat the read brought (undefined: it has none), or null when it brought none. */
  readonly heartbeats: readonly (Heartbeat | undefined | null)[];
  /** The last feed id read ("" when none). */
  readonly last: string;
}

/** The TTL assumed for a heartbeat that does not carry its own. */
const DEFAULT_TTL_MS = 5000;

/** The Redis time (ms) in a stream id "ms-seq". */
export function feedMs(fid: string): number {
  const ms = Number(fid.slice(0, fid.indexOf("-")));
  return Number.isFinite(ms) ? ms : 0;
}

export class FeedMirror {
  /** Where the next incremental read starts ("" = read the whole feed). */
  cursor = "";
  private incarnation = "";
  private items = new Map<string, Item>();
  /** The newest feed time seen: "now" by Redis's clock, as far as the feed tells. */
  private latestMs = 0;

  /** True when `incarnation` is not the one this copy was built from. */
  isNewIncarnation(incarnation: string): boolean {
    return this.incarnation !== "" && incarnation !== this.incarnation;
  }

  /** Applies one read; returns the members whose heartbeat must still be fetched. */
  apply(d: FeedDelta): string[] {
    if (d.incarnation !== this.incarnation) {
      this.items.clear();
      this.latestMs = 0;
      this.incarnation = d.incarnation;
    }
    const fetch: string[] = [];
    d.ids.forEach((id, i) => {
      let item = this.items.get(id);
      if (!item) {
        item = { hb: undefined, fetched: false, fid: "" };
        this.items.set(id, item);
      }
      item.fid = d.feedIds[i]!;
      const hb = d.heartbeats[i];
      if (hb !== null) {
        item.hb = hb;
        item.fetched = true;
      }
      if (!item.fetched) fetch.push(id);
    });
    if (d.last !== "") {
      this.cursor = d.last;
      this.latestMs = Math.max(this.latestMs, feedMs(d.last));
    }
    return fetch;
  }

  /** The heartbeats fetched for `ids` (undefined: it has none, or it is unreadable). */
  fetched(ids: readonly string[], hbs: readonly (Heartbeat | undefined)[]): void {
    ids.forEach((id, i) => {
      const item = this.items.get(id);
      if (item) {
        item.hb = hbs[i];
        item.fetched = true;
      }
    });
  }

  forget(ids: readonly string[]): void {
    for (const id of ids) this.items.delete(id);
  }

  members(): RawMember[] {
    const out: RawMember[] = [];
    for (const [id, item] of this.items) {
      const present = !!item.hb && this.latestMs - feedMs(item.fid) < (item.hb.ttlMs ?? DEFAULT_TTL_MS);
      out.push({ id, heartbeat: present ? item.hb : undefined, mark: item.fid, present });
    }
    return out;
  }
}
