/**
 * The assignor: which member serves which stream. PURE (no I/O, no clock, no randomness,
 * deterministic), so the leader, the tests and the benchmark all run the same code.
 *
 * Laws (each has a property test in test/unit/assignor.property.test.ts):
 * - Complete: every stream is placed while total capacity allows; what cannot be placed
 *   is returned in `unassigned`, never dropped silently, and is placed as soon as room
 *   appears.
 * - Proportional: member i's target is its exact share N·cap_i/Σcap rounded down or up
 *   (Σ targets = min(N, Σcap), never above cap_i). The units left after rounding down go
 *   first to members that already hold more than their rounded-down share, so no stream
 *   moves for the sake of rounding; then by largest remainder, then by id. After a
 *   rebalance every member is exactly at its target.
 * - Sticky: a stream moves only when its owner is gone, draining or over capacity, when
 *   its owner is over target during a permitted rebalance, when it left the catalog, or
 *   when its owner's worker gave it up (`refused`; never placed back on that member), or
 *   when a constraint evicts it (`constraints`: labels, a failing or degraded worker).
 * - Constrained: a stream with a constraint is never left on a member it does not allow
 *   (property-tested); a stream allowed where it is and not otherwise moving stays.
 *   So a join moves only what the newcomer gets, a leave only the leaver's streams,
 *   catalog growth no old stream, and a capacity change only the excess: in each case
 *   the fewest moves that end within the targets. (Rarely, when a large member's share
 *   crosses an integer before a small member's remainder does, no balanced placement
 *   keeps every old stream; then one more unit moves, still the fewest possible.)
 * - Hash-shaped: every free choice goes to the member weighted rendezvous hashing
 *   (./hash.ts) prefers among those with room; a member
 *   with more first-choice streams than room keeps those it prefers most; a member that
 *   must shed gives up first the streams whose hashing owner has room for them, then its
 *   weakest (mostly streams hashing gives to someone else). Rounding units go to members
 *   hashing favours (see quotaTargets in ./targets.ts), which makes a placement from scratch differ from
 *   pure hashing on the fewest streams any balanced placement can.
 * - Calm: members that are alive and not draining are rebalanced only when the caller
 *   allows it (cooldown, or a member joined or changed capacity) AND, once free streams
 *   are placed, the imbalance exceeds the threshold or a member is more than
 *   MAX_STREAM_DIFFERENCE streams from its target (or the operator forces it). Failover,
 *   drains, over-capacity and new streams never wait for that. A settled assignment is a
 *   fixed point: computing again moves nothing.
 *
 * Does not guarantee: anything about WHEN a stream may move (handoffs, holders, leases are
 * ./plan.ts's business), nor about hashed or legacy members (the caller leaves their
 * streams out of `streams`; hashed mode runs this same function over the live view:
 * ./hash-owners.ts). It reads no clock and keeps no state between calls.
 *
 * The result does not depend on the order of `streams` (only the order of `moves` does).
 * Cost: a rendezvous scan (O(members), batched through the hash's SIMD kernel) for each
 * stream that must be placed, and for the few streams a shedding member might give to a
 * member with room; O(streams) map work for everything else.
 */
import { hashString, Rendezvous } from "./hash.js";
import { MOVE_REASONS, type MoveReason, type StreamId } from "../types.js";
import { cmp, sortByKey, weakest } from "./order.js";
import { quotaTargets, type Imbalance } from "./targets.js";
import { honourConstraints, honourRefusals, type Seats, type StreamConstraint } from "./relocate.js";

export type { StreamConstraint } from "./relocate.js";

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
  /**
   * The leader's rows. Only rows in handoff (`revoking`) of streams absent from `current`
   * are read: such a stream's handoff has completed, and its placement is reported as a
   * move from the row's owner with the row's reason (e.g. "drain"), not as a new stream.
   */
  readonly previous?: ReadonlyMap<StreamId, { readonly owner: string; readonly reason: MoveReason; readonly state: string }>;
  /**
   * Streams a worker gave up, each with the member that gave it up (POST /streams/release).
   * Such a stream is free (a move with reason "released") and is never placed on that
   * member: where placement puts it there, it goes to the usable member with the most room
   * (capacity − load, then the lower id) or, with no room anywhere, stays unassigned.
   */
  readonly refused?: ReadonlyMap<StreamId, string>;
  /**
   * Where some streams may go (labels, failure memory, degraded workers: ./health-rules.ts).
   * A constrained stream is never left on a member it does not allow: placement puts it
   * where it would go anyway if that is allowed, else on the allowed member with the
   * lowest `rank`, then the most room to its target, then to its capacity (then the lower
   * id); with no room anywhere it stays unassigned. `evict`: its current owner, if not
   * allowed, gives it up with `reason`.
   */
  readonly constraints?: ReadonlyMap<StreamId, StreamConstraint>;
  readonly policy: AssignPolicy;
  /** The caller vouches that `streams` lists no id twice (no set of them is built then). */
  readonly distinct?: boolean;
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
  /** One per stream that changes owner, in the order of `streams`, then streams that left. */
  readonly moves: Move[];
  /** Streams that could not be placed (total capacity too small). */
  readonly unassigned: StreamId[];
  readonly targets: Map<string, number>;
  /** Whether members were rebalanced towards their targets (moves with the rebalance reason). */
  readonly rebalanced: boolean;
  /** Imbalance among eligible members once free streams are placed, before any rebalance. */
  readonly imbalanceBefore: Imbalance;
  /** Imbalance of the result. */
  readonly imbalanceAfter: Imbalance;
}

const R = Object.fromEntries(MOVE_REASONS.map((r, i) => [r, i])) as Record<MoveReason, number>;

export function assign(input: AssignInput): AssignResult {
  const { policy } = input;

  // Members: the usable ones (not draining, capacity ≥ 1) are indexed as in the hash.
  const memberById = new Map(input.members.map((m) => [m.id, m]));
  const usable = [...memberById.values()].filter((m) => !m.draining && Math.floor(m.capacity) > 0);
  const hrw = new Rendezvous(usable.map((m) => ({ id: m.id, weight: Math.floor(m.capacity) })));
  const M = hrw.size;
  const idx = new Map(hrw.ids.map((id, i) => [id, i]));
  const cap = Int32Array.from(hrw.ids, (id) => Math.floor(memberById.get(id)!.capacity));
  const load = new Int32Array(M);
  const room = new Int32Array(M);

  // Streams, by position k: id, holder (member index or -1), and, once it must move, the
  // reason and the previous owner. Hashes and hashing owners are computed on demand.
  const streamSet = input.distinct === true ? undefined : new Set(input.streams);
  const ids = streamSet === undefined || streamSet.size === input.streams.length ? input.streams : [...streamSet];
  const N = ids.length;
  const owner = new Int32Array(N).fill(-1);
  const moveReason = new Int8Array(N).fill(-1);
  const from: (string | null)[] = new Array<string | null>(N).fill(null);
  const sh = new Float64Array(N).fill(-1);
  const first = new Int32Array(N).fill(-2);
  const byId = (a: number, b: number): number => cmp(ids[a]!, ids[b]!);
  const hashOf = (k: number): number => (sh[k]! >= 0 ? sh[k]! : (sh[k] = hashString(ids[k]!)));
  const firstChoice = (k: number): number => (first[k]! !== -2 ? first[k]! : (first[k] = hrw.ownerIndex(hashOf(k))));
  /** The hashing owners of many streams in one batch (the hash's SIMD path). */
  const prefetch = (list: readonly number[]): void => {
    const todo = list.filter((k) => first[k] === -2);
    if (todo.length === 0) return;
    const hashes = new Float64Array(todo.length);
    for (let x = 0; x < todo.length; x++) hashes[x] = hashOf(todo[x]!);
    const owners = hrw.ownerIndexes(hashes);
    for (let x = 0; x < todo.length; x++) first[todo[x]!] = owners[x]!;
  };

  const free: number[] = [];
  let known = 0; // streams found in `current`: if all its keys are, no stream left the catalog
  for (let k = 0; k < N; k++) {
    const id = ids[k]!;
    const o = input.current.get(id);
    if (o !== undefined) known++;
    const refuser = input.refused?.get(id);
    const c = input.constraints?.get(id);
    const evicted = o !== undefined && o !== refuser && c !== undefined && c.evict && !c.allowed(o);
    if (o === undefined || o === refuser || evicted) {
      const row = o === undefined ? input.previous?.get(id) : undefined;
      const handoff = row?.state === "revoking";
      moveReason[k] = refuser !== undefined && !evicted ? R.released : evicted ? R[c.reason] : handoff ? R[row.reason] : R.catalog;
      from[k] = o ?? (handoff ? row.owner : null);
      free.push(k);
      continue;
    }
    const i = idx.get(o);
    if (i !== undefined) {
      owner[k] = i;
      load[i]!++;
      continue;
    }
    const m = memberById.get(o);
    const reason: MoveReason = m?.draining ? "drain" : input.hashed?.has(o) ? "hashed" : input.dead?.has(o) ? "failover" : m ? "capacity" : "failover";
    moveReason[k] = R[reason];
    from[k] = o;
    free.push(k);
  }

  // Streams by holder, for shedding. Built on first use: only shedding members need it.
  // Lists may miss streams placed later; that is harmless because a member that
  // receives streams is below its target and never sheds afterwards.
  let byHolder: number[][] | undefined;
  const heldBy = (i: number): number[] => {
    if (!byHolder) {
      byHolder = Array.from({ length: M }, () => []);
      for (let k = 0; k < N; k++) if (owner[k]! >= 0) byHolder[owner[k]!]!.push(k);
    }
    return byHolder[i]!.filter((k) => owner[k] === i);
  };

  // 1. Over capacity (capacity shrank): shed now, whatever the policy.
  for (let i = 0; i < M; i++) {
    if (load[i]! > cap[i]!) for (const k of shed(i, load[i]! - cap[i]!)) free.push(mark(k, i, R.capacity));
  }

  // 2. Targets. Free streams tell which members hashing favours for the seats.
  const wanted = new Int32Array(M);
  prefetch(free);
  for (const k of free) {
    const f = firstChoice(k);
    if (f >= 0) wanted[f]!++;
  }
  const order = Int32Array.from(hrw.ids, (_, i) => i); // hrw.ids is sorted by id
  const loadBefore = load.slice();
  let target = quotaTargets(N, cap, loadBefore, order, { wanted });

  // 3. Free streams to the hashing choice with room.
  for (let i = 0; i < M; i++) room[i] = Math.max(0, target[i]! - load[i]!);
  const unplaced = place(free);

  // 4. Rebalance, if permitted and needed.
  const imbalanceBefore = imbalanceOf();
  const over = imbalanceBefore.ratio > policy.imbalanceThreshold || imbalanceBefore.streams > policy.maxStreamDifference;
  const rebalance = policy.force === true || (policy.rebalanceAllowed && over);
  const rebalanceReason = R[policy.force === true ? "manual" : policy.rebalanceReason ?? "imbalance"];
  let rebalanced = false;
  if (rebalance) {
    // Reseat among members above their rounded-down share so that those holding a
    // stream hashing gives to a member with room are the ones that shed. Only those
    // members' targets change, and only between ⌊share⌋ and ⌈share⌉: neither the number
    // of moves nor anyone's room changes.
    const reluctant = holdersOfWantedStreams();
    if (reluctant) target = quotaTargets(N, cap, loadBefore, order, { wanted, reluctant });
    const shedding: number[] = [];
    for (let i = 0; i < M; i++) {
      if (load[i]! > target[i]!) for (const k of shed(i, load[i]! - target[i]!)) shedding.push(mark(k, i, rebalanceReason));
    }
    rebalanced = shedding.length > 0;
    unplaced.push(...place(shedding));
  }

  // 5. Refusals and constraints: a stream placed where it may not be goes elsewhere.
  const seats: Seats = { ids, memberIds: hrw.ids, owner, load, cap, target, moveReason, from, reasonCode: R };
  const refusedLeft = [...honourRefusals(seats, input.refused), ...honourConstraints(seats, input.constraints)];

  // 6. The result.
  const assignment = new Map<StreamId, string>();
  for (let k = 0; k < N; k++) if (owner[k]! >= 0) assignment.set(ids[k]!, hrw.ids[owner[k]!]!);
  const moves: Move[] = [];
  for (let k = 0; k < N; k++) {
    if (moveReason[k] === -1) continue;
    const to = owner[k]! >= 0 ? hrw.ids[owner[k]!]! : null;
    if (to !== from[k]) moves.push({ stream: ids[k]!, from: from[k]!, to, reason: MOVE_REASONS[moveReason[k]!]! });
  }
  if (known < input.current.size) {
    const listed = streamSet ?? new Set(ids);
    for (const [id, o] of input.current) if (!listed.has(id)) moves.push({ stream: id, from: o, to: null, reason: "catalog" });
  }
  const unassigned = [...unplaced.sort((a, b) => a - b), ...refusedLeft].map((k) => ids[k]!);
  const targets = new Map<string, number>(input.members.map((m) => [m.id, 0]));
  for (let i = 0; i < M; i++) targets.set(hrw.ids[i]!, target[i]!);
  return { assignment, moves, unassigned, targets, rebalanced, imbalanceBefore, imbalanceAfter: imbalanceOf() };

  /** Takes stream k from member i; it keeps its first reason if it already had one. */
  function mark(k: number, i: number, reason: number): number {
    owner[k] = -1;
    load[i]!--;
    if (moveReason[k] === -1) {
      moveReason[k] = reason;
      from[k] = hrw.ids[i]!;
    }
    return k;
  }

  /**
   * The `count` streams member i gives up: first those whose hashing owner is a member
   * with room (they land on their first choice), then its weakest (lowest pair hash: for
   * one member the score is monotone in it), which are mostly streams hashing gives to
   * someone else. Exact owners are computed only for streams that pass the hash's cut
   * filter for a member with room, unless many members have room.
   */
  function shed(i: number, count: number): number[] {
    const list = heldBy(i);
    const needy: number[] = [];
    for (let j = 0; j < M; j++) if (room[j]! > 0 && j !== i) needy.push(j);
    if (needy.length > 32) prefetch(list);
    else prefetch(list.filter((k) => needy.some((j) => hrw.passesCut(hashOf(k), j))));
    const key = new Float64Array(list.length);
    for (let x = 0; x < list.length; x++) {
      const k = list[x]!;
      const f = first[k]!;
      key[x] = (f >= 0 && f !== i && room[f]! > 0 ? 0 : 4294967296) + hrw.pairHashOf(hashOf(k), i);
    }
    return weakest(list, key, count, byId);
  }

  /**
   * Per member, 1 if it holds a stream whose hashing owner is another member with room.
   * Found with the hash's O(1) cut filter per stream and member with room, then an exact
   * check; skipped (undefined) when many members have room, where the scan would cost
   * more than it saves.
   */
  function holdersOfWantedStreams(): Int8Array | undefined {
    const needy: number[] = [];
    for (let i = 0; i < M; i++) if (room[i]! > 0) needy.push(i);
    if (needy.length === 0 || needy.length > 8) return undefined;
    const out = new Int8Array(M);
    for (let k = 0; k < N; k++) {
      const o = owner[k]!;
      if (o < 0 || out[o]) continue;
      for (const j of needy) {
        if (hrw.passesCut(hashOf(k), j) && firstChoice(k) === j) {
          out[o] = 1;
          break;
        }
      }
    }
    return out;
  }

  /**
   * Places streams on members with room. Each goes to its hashing owner if that one has
   * room; a member with more such streams than room keeps those it prefers most. The
   * rest go, in hash order, to the member hashing prefers among those with room left.
   * Returns the streams that found no room.
   */
  function place(list: readonly number[]): number[] {
    if (M === 0) return [...list];
    prefetch(list);
    // Group by hashing owner (a counting sort).
    const start = new Int32Array(M + 1);
    for (const k of list) start[first[k]! + 1]!++;
    for (let i = 0; i < M; i++) start[i + 1]! += start[i]!;
    const grouped = new Array<number>(list.length);
    const next = start.slice(0, M);
    for (const k of list) grouped[next[first[k]!]!++] = k;
    const deferred: number[] = [];
    for (let i = 0; i < M; i++) {
      const a = start[i]!;
      const b = start[i + 1]!;
      if (a === b) continue;
      const mine = grouped.slice(a, b);
      const excess = b - a - room[i]!;
      if (excess <= 0) {
        for (const k of mine) put(k, i);
        continue;
      }
      // It keeps the streams it prefers most (highest pair hash, then lowest id).
      const gone = weakest(mine, Float64Array.from(mine, (k) => hrw.pairHashOf(hashOf(k), i)), excess, (x, y) => byId(y, x));
      for (const k of gone) owner[k] = -2; // marks them, just for the loop below
      for (const k of mine) if (owner[k] !== -2) put(k, i);
      for (const k of gone) owner[k] = -1;
      deferred.push(...gone);
    }
    const open = new Int32Array(M);
    let count = 0;
    for (let i = 0; i < M; i++) if (room[i]! > 0) open[count++] = i;
    const left: number[] = [];
    for (const k of sortByKey(deferred, Float64Array.from(deferred, hashOf), byId)) {
      const best = hrw.bestAmong(hashOf(k), open, count);
      if (best < 0) {
        left.push(k);
        continue;
      }
      put(k, best);
      if (room[best] === 0) {
        const at = open.subarray(0, count).indexOf(best);
        open[at] = open[--count]!;
      }
    }
    return left;
  }

  function put(k: number, i: number): void {
    owner[k] = i;
    load[i]!++;
    room[i]!--;
  }

  function imbalanceOf(): Imbalance {
    let ratio = 0;
    let streams = 0;
    for (let i = 0; i < M; i++) {
      const d = Math.abs(load[i]! - target[i]!);
      if (d > streams) streams = d;
      const r = d / Math.max(target[i]!, 1);
      if (r > ratio) ratio = r;
    }
    return { ratio, streams };
  }
}
