/**
 * Who owns each stream in hashed mode: the ONE function the hashing agents
 * (agent/reconcile.ts) and the leader's plan (./plan.ts, for members serving by hashing)
 * use, so that both compute the same owners from the same view. PURE.
 *
 * It is the leader's own assignor (./assignor.ts) run over the live view: the members are
 * the live members weighted by `hashWeight` (shared/member-state.ts: draining, leaving or
 * workerless members weigh 0), the current owners are what they report holding, and the
 * policy rebalances past IMBALANCE_THRESHOLD / MAX_STREAM_DIFFERENCE (no cooldown: there
 * is no one to keep it). So, by the assignor's laws:
 * - a settled placement (the leader's, or hashing's own) is a fixed point: flipping the
 *   cluster to hashing, or losing the leader, moves nothing that has a live holder;
 * - a dead member's streams are the only ones placed anew, where hashing prefers among the
 *   members with room; a newcomer or a capacity change moves only the assignor's minimum;
 * - every choice left free goes where weighted rendezvous hashing (./hash.ts) points, so
 *   a cluster that starts hashing from nothing ends up close to pure hashing.
 * Constraints: a stream with a placement constraint (shared/labels.ts) is only ever owned
 * by a member that satisfies it; with none among the members with weight > 0, by nobody.
 * Capacity: nobody owns more than its weight (capacity); what does not fit is owned by
 * nobody, as with the leader.
 * Determinism: the result depends only on the contents of the inputs, not on the order of
 * the streams, of the members or of their held lists (test/unit/hash-owners.test.ts). A
 * stream reported by several members counts as held by the one with weight > 0 that
 * satisfies its constraint, then by the lowest id.
 *
 * Does not: know about failures, quarantine or degraded workers (those need the leader:
 * hashed mode serves a failing stream where it is), nor guarantee anything about WHEN a
 * stream may be taken (agent/reconcile.ts: never while another live member holds it, and
 * only from a settled view). Views that differ (held lists read a moment apart, caches of
 * different catalog versions) can give different owners: that is why takes wait, and why
 * each hashing agent publishes `hashingBasis` of what it hashes besides the membership
 * (agent/reconcile.ts takes nothing while a peer's basis differs).
 * Cost: one assignor run (./assignor.ts), O(streams) besides; about 100 ms from nothing at
 * 100,000 streams × 1,000 members, a few tens of ms on a settled view.
 */
import { satisfies, type Labels } from "../labels.js";
import { hashWeight, isLive } from "../member-state.js";
import type { MemberView } from "../membership.js";
import type { Stream, StreamId } from "../types.js";
import { assign, type StreamConstraint } from "./assignor.js";
import { cmp } from "./order.js";

export interface HashingMember {
  readonly id: string;
  /** Its capacity for hashing (0: it keeps and receives nothing). */
  readonly weight: number;
  readonly labels?: Labels;
  /** Streams it reports holding (only live members may be listed). */
  readonly held: readonly StreamId[];
}

/** When hashing members rebalance: the leader's thresholds (IMBALANCE_THRESHOLD, MAX_STREAM_DIFFERENCE). */
export interface HashingPolicy {
  readonly imbalanceThreshold: number;
  readonly maxStreamDifference: number;
}

/**
 * A digest of hashed ownership's inputs other than the membership: the streams (ids and
 * constraints, in any order) and the policy. Two agents with the same basis and the same
 * view compute the same owners; agents whose bases differ may not. Per stream an FNV-1a
 * hash, summed and xor-ed over the streams (so the order does not matter), in hex with
 * the stream count: a digest, not a proof (a collision needs two catalogs of one size,
 * which the settle rule still covers for views read a moment apart).
 */
export function hashingBasis(streams: readonly Stream[], policy: HashingPolicy): string {
  const fnv = (text: string, seed: number): number => {
    let h = seed;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    return h >>> 0;
  };
  let sum = 0;
  let xor = 0;
  for (const st of streams) {
    const c = st.constraint && Object.keys(st.constraint).length > 0 ? JSON.stringify(Object.entries(st.constraint).sort()) : "";
    const text = `${st.id}\u0000${c}`;
    sum = (sum + fnv(text, 0x811c9dc5)) >>> 0;
    xor = (xor ^ fnv(text, 0x01000193)) >>> 0;
  }
  const hex = (x: number) => x.toString(16).padStart(8, "0");
  return `${streams.length}-${hex(sum)}${hex(xor)}-${policy.imbalanceThreshold}/${policy.maxStreamDifference}`;
}

/** The live members of a view as hashing sees them (non-live members hold and weigh nothing). */
export function hashingMembers(views: Iterable<MemberView>, requireWorker = false): HashingMember[] {
  const out: HashingMember[] = [];
  for (const m of views) if (isLive(m)) out.push({ id: m.id, weight: hashWeight(m, requireWorker), labels: m.hb.labels, held: m.hb.held });
  return out;
}

/** The owner of each stream of `streams` in hashed mode; streams owned by nobody are absent. */
export function hashOwners(streams: readonly Stream[], members: readonly HashingMember[], policy: HashingPolicy): Map<StreamId, string> {
  const byId = new Map(members.map((m) => [m.id, m]));
  const usable = [...byId.values()].filter((m) => Math.floor(m.weight) > 0);

  // Constraints: who may own each constrained stream (in id order: the assignor honours
  // them in the map's order). A stream nobody may own is left out.
  const matchCache = new Map<string, ReadonlySet<string>>();
  const allowedFor = (c: Labels): ReadonlySet<string> => {
    const key = JSON.stringify(Object.entries(c).sort());
    let set = matchCache.get(key);
    if (!set) matchCache.set(key, (set = new Set(usable.filter((m) => satisfies(m.labels, c)).map((m) => m.id))));
    return set;
  };
  const allowed = new Map<StreamId, ReadonlySet<string>>();
  const ids: StreamId[] = [];
  for (const s of streams) {
    const c = s.constraint;
    if (c && Object.keys(c).length > 0) {
      const set = allowedFor(c);
      if (set.size === 0) continue;
      allowed.set(s.id, set);
    }
    ids.push(s.id);
  }
  const constraints = new Map<StreamId, StreamConstraint>();
  for (const id of [...allowed.keys()].sort(cmp)) {
    const set = allowed.get(id)!;
    constraints.set(id, { allowed: (m) => set.has(m), evict: true, reason: "catalog" });
  }

  // Current owners: what members hold, one holder per stream whatever the order of the
  // lists. (Held streams outside `ids` are owned by nobody: the assignor drops them.)
  const current = new Map<StreamId, string>();
  const better = (a: HashingMember, b: HashingMember, s: StreamId): boolean => {
    const ok = (m: HashingMember) => Math.floor(m.weight) > 0 && (allowed.get(s)?.has(m.id) ?? true);
    return ok(a) !== ok(b) ? ok(a) : cmp(a.id, b.id) < 0;
  };
  for (const m of byId.values()) {
    for (const s of m.held) {
      const o = current.get(s);
      if (o === undefined || (o !== m.id && better(m, byId.get(o)!, s))) current.set(s, m.id);
    }
  }

  const r = assign({
    streams: ids,
    members: [...byId.values()].map((m) => ({ id: m.id, capacity: Math.max(0, m.weight), draining: false })),
    current,
    constraints,
    policy: { imbalanceThreshold: policy.imbalanceThreshold, maxStreamDifference: policy.maxStreamDifference, rebalanceAllowed: true },
  });
  return r.assignment;
}
