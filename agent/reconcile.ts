/**
 * What to offer the worker next. PURE.
 *
 * Releases apply at once; acquisitions are guarded:
 * - never a stream another live member reports holding (it has not let go yet);
 * - only from a fresh view;
 * - in hashed mode, only once the membership view has not grown for HASH_SETTLE (a
 *   newcomer's peers may not have seen it yet), and only a stream that every view
 *   observed over at least HASH_SETTLE, up to a read, has given to this member
 *   (agent/hashed-view.ts `mine`; a view unchanged for that long counts).
 * Why the last rule: hashed ownership (shared/placement/hash-owners.ts) is the assignor
 * run over what members hold, so two views read a moment apart may place a free stream
 * on different members. A claim that held over HASH_SETTLE (longer than it takes every
 * decider to read the cluster again, and to see a take by a peer) is one every peer's
 * view agrees with, or one a peer's take already blocks. A view that settled before the
 * switch to hashing takes at once: with no ready leader the view is watched in
 * orchestrated mode too (from shared/timings.ts wholeViewLeaderlessMs on, when the
 * agent's reads become whole), so the streams of a leader lost while nothing moved are
 * taken as soon as the fleet hashes, even after peers took their part of them (peers' takes that
 * follow the owners computed before leave this member's owners as they were, except in
 * rare cases, where the run of the stream concerned starts again).
 * And only while every live peer that may take by hashing (hashing weight > 0, serving
 * in hashed mode or keeping a hashed view) publishes the same hashing basis as this agent (hb.hashBasis: the catalog and thresholds it hashes with):
 * agents whose caches hold different catalog versions, or that run different thresholds
 * or an earlier version, could each settle on giving one free stream to itself. Until
 * they agree (the next catalog refresh), free streams wait: a gap, never a duplicate.
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
  /** Orchestrated: keep the hashed view up to date all the same (no ready leader: hashing may come soon). */
  readonly watchHashed?: boolean;
}

export interface ReconcileResult {
  readonly streams: Stream[];
  /** Wanted but not taken yet (held elsewhere, or settling). */
  readonly blocked: StreamId[];
  /** The hashed view to pass to the next reconcile (undefined: not kept now). */
  readonly hashedView?: HashedView;
}

export function reconcile(i: ReconcileInput): ReconcileResult {
  const listed = new Map(i.listed.map((s) => [s.id, s]));
  const fresh = !!i.snapshot && i.now - i.snapshot.at <= i.maxViewAgeMs;
  // Who else holds what, built on first need: a steady member keeps what it lists and never asks.
  let othersMap: Map<StreamId, string> | undefined;
  const heldElsewhere = (id: StreamId) => (othersMap ??= i.snapshot ? heldByOthers(i.snapshot, i.me) : new Map<StreamId, string>()).has(id);
  const streams: Stream[] = [];
  const blocked: StreamId[] = [];
  // The hashed view is kept while hashing, and while hashing may come soon (`watchHashed`),
  // so that a switch knows for how long each stream has been this member's.
  const catalog = i.catalog && i.legacy?.size ? i.catalog.filter((s) => !i.legacy!.has(s.id)) : i.catalog;
  const whole = !!i.snapshot && i.snapshot.whole !== false;
  const watch = i.mode === "hashed" || i.watchHashed === true;
  const view = watch && catalog && whole ? ownersOf(observe(i.hashedView, i.now, catalog, i.snapshot!, i.hashPolicy), i.me) : undefined;

  if (i.mode === "orchestrated") {
    if (!i.rows) return { streams: [...i.listed], blocked: [], hashedView: view };
    for (const s of i.rows) {
      if (listed.has(s.id)) streams.push(s); // keep (with the freshest url/name)
      else if (fresh && !heldElsewhere(s.id)) streams.push(s);
      else blocked.push(s.id);
    }
    return { streams, blocked, hashedView: view };
  }

  if (!catalog || !i.snapshot) return { streams: [], blocked: [] };
  if (!view) return { streams: [...i.listed], blocked: [] }; // not a whole view: change nothing
  const mayTake = fresh && i.now - i.snapshot.viewGrewAt >= i.hashSettleMs && i.takeNew !== false && peersAgree(i.snapshot, i.me, view.basis);
  for (const s of catalog) {
    const since = view.mine.get(s.id);
    if (since === undefined) continue;
    // Read against the snapshot's time: a read HASH_SETTLE later must still show it mine.
    if (listed.has(s.id) || (mayTake && !heldElsewhere(s.id) && i.snapshot.at - since >= i.hashSettleMs)) streams.push(s);
    else blocked.push(s.id);
  }
  return { streams, blocked, hashedView: view };
}

/**
 * Whether every live peer that may take by hashing publishes `basis` (see the header). A
 * peer may take by hashing when it serves in hashed mode or keeps a hashed view (it
 * publishes a basis: no ready leader in its view for wholeViewLeaderlessMs, it may
 * switch soon); a peer serving a ready leader's rows takes only what the leader gives it, and the leader leaves
 * out what hashing members own (./plan.ts step 2).
 */
export function peersAgree(snap: Snapshot, me: string, basis: string): boolean {
  for (const m of hashingMembers(snap.members.values(), snap.requireWorker)) {
    if (m.id === me || Math.floor(m.weight) <= 0) continue;
    const hb = snap.members.get(m.id)?.hb;
    if ((hb?.mode === "hashed" || hb?.hashBasis !== undefined) && hb?.hashBasis !== basis) return false;
  }
  return true;
}

/** The streams hashing gives `me` over the live view (no memo, no guards: for views and tests). */
export function hashedShare(me: string, catalog: readonly Stream[], snap: Snapshot, policy: HashingPolicy): Stream[] {
  const owners = hashOwners(catalog, hashingMembers(snap.members.values(), snap.requireWorker), policy);
  return catalog.filter((s) => owners.get(s.id) === me);
}
