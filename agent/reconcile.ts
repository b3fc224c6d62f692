/**
 * What to offer the worker next. PURE.
 *
 * Releases apply at once; acquisitions are guarded:
 * - never a stream another live member reports holding (it has not let go yet);
 * - only from a fresh view;
 * - in hashed mode, only once the membership view has not grown for HASH_SETTLE (a
 *   newcomer's peers may not have seen it yet), and only a stream that a view read at
 *   least HASH_SETTLE after this member began to want it still gives it (without a break
 *   in between), or that a view gives whose inputs (live members, their weights, labels
 *   and held lists, the catalog) had not changed for HASH_SETTLE when it was read.
 * Why the last rule: hashed ownership (shared/placement/hash-owners.ts) is the assignor
 * run over what members hold, so two views read a moment apart may place a free stream
 * on different members. A claim that survives HASH_SETTLE (longer than it takes every
 * decider to read the cluster again, and to see a take by a peer) is one every peer's view
 * agrees with, or one a peer's take already blocks. A settled view takes at once: a
 * member that dies after the fleet settled, or the leader lost while nothing moved, has
 * its streams taken as soon as its death is seen and the view has not changed since.
 * In hashed mode nothing is released or taken from a view that is not whole (a follower's
 * read, before the first full one): it would not show who holds what.
 */
import { observe, ownersOf, type HashedView } from "./hashed-view.js";
import { heldByOthers } from "../shared/member-state.js";
import type { Snapshot } from "../shared/membership.js";
import { hashingMembers, hashOwners, type HashingPolicy } from "../shared/placement/hash-owners.js";
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
  /** Hashed: when hashing members rebalance (IMBALANCE_THRESHOLD, MAX_STREAM_DIFFERENCE). */
  readonly hashPolicy: HashingPolicy;
  /** The hashed view this reconcile's caller kept from the previous one. */
  readonly hashedView?: HashedView;
}

export interface ReconcileResult {
  readonly streams: Stream[];
  /** Wanted but not taken yet (held elsewhere, or settling). */
  readonly blocked: StreamId[];
  /** The hashed view to pass to the next reconcile (undefined: not reading the whole membership). */
  readonly hashedView?: HashedView;
}

export function reconcile(i: ReconcileInput): ReconcileResult {
  const listed = new Map(i.listed.map((s) => [s.id, s]));
  const fresh = !!i.snapshot && i.now - i.snapshot.at <= i.maxViewAgeMs;
  // The hashed inputs are watched whenever the whole membership is read (hashing, or
  // about to), so that a switch to hashing knows how long the view has been settled.
  const catalog = i.catalog && i.legacy?.size ? i.catalog.filter((s) => !i.legacy!.has(s.id)) : i.catalog;
  const whole = !!i.snapshot && i.snapshot.whole !== false;
  let view = catalog && whole ? observe(i.hashedView, i.now, catalog, i.snapshot!, i.hashPolicy) : undefined;
  const others = i.snapshot ? heldByOthers(i.snapshot, i.me) : new Map<StreamId, string>();
  const streams: Stream[] = [];
  const blocked: StreamId[] = [];

  if (i.mode === "orchestrated") {
    if (!i.rows) return { streams: [...i.listed], blocked: [], hashedView: view && { ...view, wantedSince: new Map() } };
    for (const s of i.rows) {
      if (listed.has(s.id)) streams.push(s); // keep (with the freshest url/name)
      else if (fresh && !others.has(s.id)) streams.push(s);
      else blocked.push(s.id);
    }
    return { streams, blocked, hashedView: view && { ...view, wantedSince: new Map() } };
  }

  if (!catalog || !i.snapshot) return { streams: [], blocked: [] };
  if (!view) return { streams: [...i.listed], blocked: [] }; // not a whole view: change nothing
  const computed = ownersOf(view);
  view = computed.view;
  const mayTake = fresh && i.now - i.snapshot.viewGrewAt >= i.hashSettleMs && i.takeNew !== false;
  // Both clocks are read against the snapshot's time: a read HASH_SETTLE after the change
  // (or the first want) must still show it, not merely the passing of time.
  const readAt = i.snapshot.at;
  const settled = readAt - view.changedAt >= i.hashSettleMs;
  const wantedSince = new Map<StreamId, number>();
  for (const s of catalog) {
    if (computed.owners.get(s.id) !== i.me) continue;
    if (listed.has(s.id)) {
      streams.push(s);
      continue;
    }
    const since = view.wantedSince.get(s.id) ?? i.now;
    if (mayTake && !others.has(s.id) && (settled || readAt - since >= i.hashSettleMs)) {
      streams.push(s);
      continue;
    }
    wantedSince.set(s.id, since);
    blocked.push(s.id);
  }
  return { streams, blocked, hashedView: { ...view, wantedSince } };
}

/** The streams hashing gives `me` over the live view (no memo, no guards: for views and tests). */
export function hashedShare(me: string, catalog: readonly Stream[], snap: Snapshot, policy: HashingPolicy): Stream[] {
  const owners = hashOwners(catalog, hashingMembers(snap.members.values(), snap.requireWorker), policy);
  return catalog.filter((s) => owners.get(s.id) === me);
}
