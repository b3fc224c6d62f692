/**
 * The assignor's core (./assignor.ts states its laws, which hold here): the same
 * placement over streams given by position, with their current owners in an array, so
 * that a caller holding streams by position (./plan.ts) builds no map keyed by stream.
 * PURE, deterministic. The result gives each position's new owner as an index into
 * `memberIds`; `seatMap` turns that into the assignment map, built on first read. It keeps
 * the last hash it built between calls (`rendezvousOf`), which changes no result.
 *
 * Does not: check that `ids` are distinct (the caller does), nor report streams that left
 * (the caller compares its `current` with `ids`).
 */
import { hashString, Rendezvous, type HashMember } from "./hash.js";
import { MOVE_REASONS, type MoveReason, type StreamId } from "../types.js";
import { cmp, sortByKey, weakest } from "./order.js";
import { quotaTargets, type Imbalance } from "./targets.js";
import { honourConstraints, honourRefusals, type Seats } from "./relocate.js";
import type { AssignInput, AssignResult, Move } from "./assignor.js";

export interface SeatInput extends Omit<AssignInput, "streams" | "current" | "distinct"> {
  /** Distinct stream ids, by position. */
  readonly ids: readonly StreamId[];
  /** The current owner of each position (any id; owners not in `members` lose their streams). */
  readonly cur: readonly (string | undefined)[];
  /** hashString of each position's id, if known (filled in where −1). */
  readonly hashes?: Float64Array;
}

export interface SeatResult extends Omit<AssignResult, "assignment"> {
  /** The new owner of each position: an index into `memberIds`, or −1. */
  readonly owner: Int32Array;
  readonly memberIds: readonly string[];
}

/**
 * The assignment of a seat result as a map from stream to member, built on first read
 * (its size is known without building it): a leader's tick only counts it.
 */
export function seatMap(ids: readonly StreamId[], r: SeatResult): Map<StreamId, string> {
  let count = 0;
  for (let k = 0; k < r.owner.length; k++) if (r.owner[k]! >= 0) count++;
  return new LazyMap(count, (m) => {
    for (let k = 0; k < ids.length; k++) if (r.owner[k]! >= 0) m.set(ids[k]!, r.memberIds[r.owner[k]!]!);
  });
}

class LazyMap<K, V> extends Map<K, V> {
  private fill: ((m: Map<K, V>) => void) | undefined;
  constructor(
    private readonly count: number,
    fill: (m: Map<K, V>) => void,
  ) {
    super();
    this.fill = fill;
  }
  private built(): this {
    const f = this.fill;
    if (f) {
      this.fill = undefined;
      const out = new Map<K, V>();
      f(out);
      for (const [k, v] of out) super.set(k, v);
    }
    return this;
  }
  override get size(): number {
    return this.fill ? this.count : super.size;
  }
  override get(k: K): V | undefined {
    return this.built() && super.get(k);
  }
  override has(k: K): boolean {
    return this.built() && super.has(k);
  }
  override set(k: K, v: V): this {
    this.built();
    return super.set(k, v);
  }
  override delete(k: K): boolean {
    return this.built() && super.delete(k);
  }
  override clear(): void {
    this.fill = undefined;
    super.clear();
  }
  override forEach(f: (v: V, k: K, m: Map<K, V>) => void, self?: unknown): void {
    this.built();
    super.forEach(f, self);
  }
  override entries(): MapIterator<[K, V]> {
    return this.built() && super.entries();
  }
  override keys(): MapIterator<K> {
    return this.built() && super.keys();
  }
  override values(): MapIterator<V> {
    return this.built() && super.values();
  }
  override [Symbol.iterator](): MapIterator<[K, V]> {
    return this.built() && super[Symbol.iterator]();
  }
}

const R = Object.fromEntries(MOVE_REASONS.map((r, i) => [r, i])) as Record<MoveReason, number>;

/** The last hash built and what it was built from (ids and weights, in order). */
let lastHash: { readonly key: string; readonly hrw: Rendezvous } | undefined;

/**
 * The hash of these members: the last one built when the members and their weights are
 * the same (a Rendezvous is immutable and a function of them), else a new one. Besides
 * sparing the build, holding one instance between calls keeps V8's hidden classes of
 * Rendezvous alive: once none is left, a garbage collection drops them and with them the
 * optimized code of seat and of the hash's methods, and the next plan, a leader's first
 * after a quiet spell, ran its 100,000-stream passes unoptimized (bench/plan-join.ts:
 * about 30 ms more at 1,000 members).
 */
function rendezvousOf(members: readonly HashMember[]): Rendezvous {
  const key = JSON.stringify(members.map((m) => [m.id, m.weight]));
  if (lastHash?.key !== key) lastHash = { key, hrw: new Rendezvous(members) };
  return lastHash.hrw;
}

export function seat(input: SeatInput): SeatResult {
  const { policy } = input;

  // Members: the usable ones (not draining, capacity ≥ 1) are indexed as in the hash.
  const memberById = new Map(input.members.map((m) => [m.id, m]));
  const usable = [...memberById.values()].filter((m) => !m.draining && Math.floor(m.capacity) > 0);
  const hrw = rendezvousOf(usable.map((m) => ({ id: m.id, weight: Math.floor(m.capacity) })));
  const M = hrw.size;
  const idx = new Map(hrw.ids.map((id, i) => [id, i]));
  const cap = Int32Array.from(hrw.ids, (id) => Math.floor(memberById.get(id)!.capacity));
  const load = new Int32Array(M);
  const room = new Int32Array(M);

  // Streams, by position k: id, holder (member index or -1), and, once it must move, the
  // reason and the previous owner. Hashes and hashing owners are computed on demand.
  const { ids, cur } = input;
  const N = ids.length;
  const owner = new Int32Array(N).fill(-1);
  const moveReason = new Int8Array(N).fill(-1);
  const from = new Map<number, string | null>(); // set for streams that move
  const sh = input.hashes ?? new Float64Array(N).fill(-1);
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
  const refused = input.refused !== undefined && input.refused.size > 0 ? input.refused : undefined;
  const constraints = input.constraints !== undefined && input.constraints.size > 0 ? input.constraints : undefined;
  for (let k = 0; k < N; k++) {
    const id = ids[k]!;
    const o = cur[k];
    const refuser = refused?.get(id);
    const c = constraints?.get(id);
    const evicted = o !== undefined && o !== refuser && c !== undefined && c.evict && !c.allowed(o);
    if (o === undefined || o === refuser || evicted) {
      const row = o === undefined ? input.previous?.get(id) : undefined;
      const handoff = row?.state === "revoking";
      moveReason[k] = refuser !== undefined && !evicted ? R.released : evicted ? R[c.reason] : handoff ? R[row.reason] : R.catalog;
      const was = o ?? (handoff ? row.owner : null);
      if (was !== null) from.set(k, was);
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
    from.set(k, o);
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
  const moves: Move[] = [];
  for (let k = 0; k < N; k++) {
    if (moveReason[k] === -1) continue;
    const to = owner[k]! >= 0 ? hrw.ids[owner[k]!]! : null;
    const was = from.get(k) ?? null;
    if (to !== was) moves.push({ stream: ids[k]!, from: was, to, reason: MOVE_REASONS[moveReason[k]!]! });
  }
  const unassigned = [...unplaced.sort((a, b) => a - b), ...refusedLeft].map((k) => ids[k]!);
  const targets = new Map<string, number>(input.members.map((m) => [m.id, 0]));
  for (let i = 0; i < M; i++) targets.set(hrw.ids[i]!, target[i]!);
  return { owner, memberIds: hrw.ids, moves, unassigned, targets, rebalanced, imbalanceBefore, imbalanceAfter: imbalanceOf() };

  /** Takes stream k from member i; it keeps its first reason if it already had one. */
  function mark(k: number, i: number, reason: number): number {
    owner[k] = -1;
    load[i]!--;
    if (moveReason[k] === -1) {
      moveReason[k] = reason;
      from.set(k, hrw.ids[i]!);
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
    else {
      const maybe: number[] = [];
      for (const k of list) {
        const h = hashOf(k);
        for (const j of needy) {
          if (hrw.passesCut(h, j)) {
            maybe.push(k);
            break;
          }
        }
      }
      prefetch(maybe);
    }
    // Streams whose hashing owner has room key below 2^32, the others above: when there
    // are enough of the former, the others cannot be among the weakest.
    const wanted: number[] = [];
    for (const k of list) {
      const f = first[k]!;
      if (f >= 0 && f !== i && room[f]! > 0) wanted.push(k);
    }
    const pool = wanted.length >= count ? wanted : list;
    const key = new Float64Array(pool.length);
    for (let x = 0; x < pool.length; x++) {
      const k = pool[x]!;
      const f = first[k]!;
      key[x] = (f >= 0 && f !== i && room[f]! > 0 ? 0 : 4294967296) + hrw.pairHashOf(hashOf(k), i);
    }
    return weakest(pool, key, count, byId);
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
