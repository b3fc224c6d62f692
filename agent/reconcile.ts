/**
 * What to offer the worker next. PURE.
 *
 * Releases apply at once; acquisitions are guarded:
 * - never a stream another live member reports holding (it has not let go yet);
 * - in hashed mode, only once the membership view has not grown for HASH_SETTLE (a
 *   newcomer's peers may not have seen it yet) and from a fresh view.
 * Shrinking views (a member died or left) need no settling: removing a member never
 * changes the hash owner of a stream it did not own.
 */
import { hashOwners } from "../shared/placement/hash-owners.js";
import { hashWeight, heldByOthers } from "../shared/member-state.js";
import type { Snapshot } from "../shared/membership.js";
import type { Mode, Stream, StreamId } from "../shared/types.js";

export interface ReconcileInput {
  readonly me: string;
  readonly now: number;
  readonly mode: Mode;
  readonly listed: readonly Stream[];
  /** Orchestrated: this member's active rows. */
  readonly rows: readonly Stream[] | undefined;
  /** Hashed: the cached catalog. */
  readonly catalog: readonly Stream[] | undefined;
  /** Hashed: streams of live legacy members, which hashing must leave alone. */
  readonly legacy?: ReadonlyMap<StreamId, string>;
  /** Hashed: false keeps and releases only (a ready leader is about to take this agent back). */
  readonly takeNew?: boolean;
  readonly snapshot: Snapshot | undefined;
  readonly hashSettleMs: number;
  /** A view older than this is too stale to acquire from. */
  readonly maxViewAgeMs: number;
}

export interface ReconcileResult {
  readonly streams: Stream[];
  /** Wanted but not taken yet (held elsewhere, or settling). */
  readonly blocked: StreamId[];
}

export function reconcile(i: ReconcileInput): ReconcileResult {
  const listed = new Map(i.listed.map((s) => [s.id, s]));
  let desired: readonly Stream[];
  let mayAcquire = !!i.snapshot && i.now - i.snapshot.at <= i.maxViewAgeMs;
  if (i.mode === "orchestrated") {
    if (!i.rows) return { streams: [...i.listed], blocked: [] };
    desired = i.rows;
  } else {
    if (!i.catalog || !i.snapshot) return { streams: [], blocked: [] };
    desired = hashedShare(i.me, i.legacy?.size ? i.catalog.filter((s) => !i.legacy!.has(s.id)) : i.catalog, i.snapshot);
    mayAcquire &&= i.now - i.snapshot.viewGrewAt >= i.hashSettleMs && i.takeNew !== false;
  }
  const others = i.snapshot ? heldByOthers(i.snapshot, i.me) : new Map<StreamId, string>();
  const streams: Stream[] = [];
  const blocked: StreamId[] = [];
  for (const s of desired) {
    if (listed.has(s.id)) streams.push(s); // keep (with the freshest url/name)
    else if (mayAcquire && !others.has(s.id)) streams.push(s);
    else blocked.push(s.id);
  }
  return { streams, blocked };
}

/** The streams weighted rendezvous hashing gives `me` over the live view. */
export function hashedShare(me: string, catalog: readonly Stream[], snap: Snapshot): Stream[] {
  const { hrw, owners } = hashOwners(catalog, [...snap.members.values()].map((m) => ({ id: m.id, weight: hashWeight(m, snap.requireWorker), labels: m.hb?.labels })));
  const mine = hrw.ids.indexOf(me);
  if (mine < 0) return [];
  return catalog.filter((_, i) => owners[i] === mine);
}
