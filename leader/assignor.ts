/**
 * The assignor: which member serves which stream. PURE (no I/O, no clock, no randomness,
 * deterministic order), so the leader, the tests and the benchmark all run the same code.
 *
 * Laws (each has a property test in test/unit/assignor.property.test.ts):
 * - Complete: every stream is placed while total capacity allows; what cannot be placed
 *   is returned in `unassigned`, never dropped silently.
 * - Proportional: member i's target is N·cap_i/Σcap rounded by largest remainder, never
 *   above cap_i; after a rebalance every member is exactly at its target.
 * - Sticky: a stream moves only when its owner is gone, draining, over capacity, over its
 *   target during a permitted rebalance, or the stream left the catalog.
 * - Hash-shaped: every free choice goes to the member weighted rendezvous hashing
 *   (shared/hash.ts, the hashing fallback's function) prefers among those with room; a
 *   member that must shed gives up first the streams hashing would give to someone else.
 * - Calm: members that are alive and not draining are rebalanced only when the caller
 *   allows it (cooldown) AND imbalance exceeds the threshold or the stream-count
 *   difference exceeds MAX_STREAM_DIFFERENCE. A settled assignment is a fixed point.
 */
import { hashString, Rendezvous } from "../shared/hash.js";
import type { StreamId } from "../shared/types.js";

export type MoveReason =
  | "failover" // the owner died
  | "join" // a rebalance because a member joined
  | "drain" // the owner is draining
  | "imbalance" // a rebalance because loads drifted past the threshold
  | "catalog" // the stream was added to or removed from the catalog
  | "capacity" // the owner's capacity shrank, or capacity appeared for unplaced streams
  | "hashed" // a member serving in hashed mode owns the stream by hashing
  | "manual"; // an operator asked for a rebalance

export interface AssignMember {
  readonly id: string;
  readonly capacity: number;
  /** Draining members keep nothing and receive nothing. */
  readonly draining: boolean;
}

export interface AssignPolicy {
  readonly imbalanceThreshold: number;
  readonly maxStreamDifference: number;
  /** False while the rebalance cooldown runs; failover, drains and new streams ignore it. */
  readonly rebalanceAllowed: boolean;
  /** Rebalance to the targets whatever the imbalance (an operator's POST /rebalance). */
  readonly force?: boolean;
  /** Why a rebalance would happen now, for the moves' reasons (default "imbalance"). */
  readonly rebalanceReason?: MoveReason;
}

export interface AssignInput {
  /** Streams to place (active catalog, minus what hashed or legacy members own). */
  readonly streams: readonly StreamId[];
  /** Members that may hold streams: alive, orchestrated. */
  readonly members: readonly AssignMember[];
  /** Current owner of each stream (any id; owners not in `members` lose their streams). */
  readonly current: ReadonlyMap<StreamId, string>;
  /** Owners known to have died (their streams move with reason "failover"). */
  readonly dead?: ReadonlySet<string>;
  /** Owners serving in hashed mode (their streams move with reason "hashed"). */
  readonly hashed?: ReadonlySet<string>;
  readonly policy: AssignPolicy;
}

export interface Move {
  readonly stream: StreamId;
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: MoveReason;
}

export interface AssignResult {
  /** The new owner of every placed stream. */
  readonly assignment: Map<StreamId, string>;
  readonly moves: Move[];
  /** Streams that could not be placed (total capacity too small). */
  readonly unassigned: StreamId[];
  readonly targets: Map<string, number>;
  /** Whether a rebalance of live members happened (moves with reason join/imbalance/manual). */
  readonly rebalanced: boolean;
  /** Imbalance among eligible members before this step (see `measureImbalance`). */
  readonly imbalanceBefore: Imbalance;
}

export interface Imbalance {
  /** max |load_i − target_i| / max(target_i, 1) */
  readonly ratio: number;
  /** max |load_i − target_i|, in streams */
  readonly streams: number;
}

/**
 * Targets by largest remainder: Σ targets = min(N, Σcap), each ≤ cap. Ties in the
 * remainders go to members that already hold more (so a settled assignment keeps its
 * targets), then by id.
 */
export function computeTargets(n: number, members: readonly AssignMember[], load: ReadonlyMap<string, number>): Map<string, number> {
  const eligible = members.filter((m) => !m.draining && m.capacity > 0);
  const targets = new Map<string, number>(members.map((m) => [m.id, 0]));
  const total = eligible.reduce((s, m) => s + m.capacity, 0);
  if (total === 0 || n === 0) return targets;
  if (n >= total) {
    for (const m of eligible) targets.set(m.id, m.capacity);
    return targets;
  }
  let given = 0;
  const rema: { id: string; frac: number; load: number }[] = [];
  for (const m of eligible) {
    const exact = (n * m.capacity) / total;
    const base = Math.floor(exact);
    targets.set(m.id, base);
    given += base;
    rema.push({ id: m.id, frac: exact - base, load: load.get(m.id) ?? 0 });
  }
  rema.sort((a, b) => b.frac - a.frac || b.load - a.load || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (let k = 0; given < n && k < rema.length; k++, given++) {
    const r = rema[k]!;
    targets.set(r.id, targets.get(r.id)! + 1);
  }
  return targets;
}

export function measureImbalance(members: readonly AssignMember[], load: ReadonlyMap<string, number>, targets: ReadonlyMap<string, number>): Imbalance {
  let ratio = 0;
  let streams = 0;
  for (const m of members) {
    if (m.draining || m.capacity <= 0) continue;
    const t = targets.get(m.id) ?? 0;
    const d = Math.abs((load.get(m.id) ?? 0) - t);
    streams = Math.max(streams, d);
    ratio = Math.max(ratio, d / Math.max(t, 1));
  }
  return { ratio, streams };
}

export function assign(input: AssignInput): AssignResult {
  const { policy } = input;
  const streams = [...new Set(input.streams)];
  const memberById = new Map(input.members.map((m) => [m.id, m]));
  const usable = input.members.filter((m) => !m.draining && m.capacity > 0);
  const hrw = new Rendezvous(usable.map((m) => ({ id: m.id, weight: m.capacity })));
  const indexOf = new Map(hrw.ids.map((id, i) => [id, i]));

  const assignment = new Map<StreamId, string>();
  const moves: Move[] = [];
  const free: { id: StreamId; h: number; reason: MoveReason; from: string | null }[] = [];
  const held = new Map<string, { id: StreamId; h: number }[]>(usable.map((m) => [m.id, []]));

  // 1. Keep what may stay; free the rest with the reason it must move.
  for (const id of streams) {
    const owner = input.current.get(id);
    const h = hashString(id);
    if (owner === undefined) {
      free.push({ id, h, reason: "catalog", from: null });
      continue;
    }
    const m = memberById.get(owner);
    if (m && !m.draining && m.capacity > 0) {
      held.get(owner)!.push({ id, h });
      continue;
    }
    const reason: MoveReason = m?.draining ? "drain" : input.hashed?.has(owner) ? "hashed" : input.dead?.has(owner) ? "failover" : m ? "capacity" : "failover";
    free.push({ id, h, reason, from: owner });
  }
  const streamSet = new Set(streams);
  for (const [id, owner] of input.current) {
    if (!streamSet.has(id)) moves.push({ stream: id, from: owner, to: null, reason: "catalog" });
  }

  const load = new Map<string, number>([...held].map(([id, list]) => [id, list.length]));
  const targets = computeTargets(streams.length, input.members, load);
  const imbalanceBefore = measureImbalance(usable, load, targets);

  // 2. Shedding. Over capacity: always. Over target: only in a permitted rebalance.
  const overThreshold =
    imbalanceBefore.ratio > policy.imbalanceThreshold || imbalanceBefore.streams > policy.maxStreamDifference;
  const rebalance = policy.force === true || (policy.rebalanceAllowed && overThreshold);
  const rebalanceReason: MoveReason = policy.force ? "manual" : policy.rebalanceReason ?? "imbalance";
  let rebalanced = false;
  for (const m of usable) {
    const list = held.get(m.id)!;
    const keep = rebalance ? targets.get(m.id)! : m.capacity;
    if (list.length <= keep) continue;
    // Give up first the streams hashing would place elsewhere, weakest affinity first.
    const i = indexOf.get(m.id)!;
    const ranked = list
      .map((s) => ({ s, mine: hrw.ownerIndex(s.h) === i ? 1 : 0, score: hrw.scoreOf(s.h, i) }))
      .sort((a, b) => b.mine - a.mine || b.score - a.score || (a.s.id < b.s.id ? -1 : 1));
    held.set(m.id, ranked.slice(0, keep).map((r) => r.s));
    const reason: MoveReason = list.length > m.capacity ? "capacity" : rebalanceReason;
    for (const r of ranked.slice(keep)) free.push({ id: r.s.id, h: r.s.h, reason, from: m.id });
    if (rebalance && list.length > targets.get(m.id)!) rebalanced = true;
    load.set(m.id, keep);
  }

  // 3. Fill. Room = target (room up to capacity when nothing is over target would
  //    break proportionality). First choice: the hashing winner if it has room.
  const room = (i: number) => (load.get(hrw.ids[i]!) ?? 0) < (targets.get(hrw.ids[i]!) ?? 0);
  free.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const deferred: typeof free = [];
  const place = (f: (typeof free)[number], i: number) => {
    const to = hrw.ids[i]!;
    load.set(to, (load.get(to) ?? 0) + 1);
    held.get(to)!.push({ id: f.id, h: f.h });
    if (f.from !== to) moves.push({ stream: f.id, from: f.from, to, reason: f.reason });
  };
  for (const f of free) {
    const first = hrw.ownerIndex(f.h);
    if (first >= 0 && room(first)) place(f, first);
    else deferred.push(f);
  }
  const unassigned: StreamId[] = [];
  for (const f of deferred) {
    const i = hrw.bestAllowed(f.h, room);
    if (i >= 0) place(f, i);
    else {
      unassigned.push(f.id);
      if (f.from !== null) moves.push({ stream: f.id, from: f.from, to: null, reason: f.reason });
    }
  }

  for (const [owner, list] of held) for (const s of list) assignment.set(s.id, owner);
  moves.sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0));
  return { assignment, moves, unassigned, targets, rebalanced, imbalanceBefore };
}
