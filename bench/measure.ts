/**
 * Clusters, events and the measures the benchmark reports. Deterministic: the same
 * arguments build the same cluster, so every strategy sees the same inputs.
 */
import { quotaTargets } from "../shared/placement/targets.js";
import type { MoveReason } from "../shared/types.js";
import { Rendezvous } from "../shared/placement/hash.js";
import { hashOwners, type HashingPolicy } from "../shared/placement/hash-owners.js";
import type { BenchMember, Strategy } from "./strategies.js";

export type Profile = "uniform" | "mixed";

export interface Cluster {
  readonly streams: string[];
  readonly members: BenchMember[];
}

/**
 * N streams with numeric ids 1..N (as in the production catalog) over M members whose
 * capacities add up to 1.5·N (two thirds used). "mixed": capacities in the ratio 1:2:3:4.
 */
export function makeCluster(n: number, m: number, profile: Profile): Cluster {
  const streams = Array.from({ length: n }, (_, i) => String(i + 1));
  const tiers = profile === "uniform" ? [1] : [1, 2, 3, 4];
  const mean = tiers.reduce((a, b) => a + b, 0) / tiers.length;
  const unit = (1.5 * n) / m / mean;
  const members = Array.from({ length: m }, (_, i) => ({
    id: `fp-${String(i).padStart(4, "0")}`,
    capacity: Math.max(1, Math.ceil(unit * tiers[i % tiers.length]!)),
  }));
  return { streams, members };
}

export type EventKind = "join" | "leave" | "capacity" | "growth";
export const EVENTS: readonly EventKind[] = ["join", "leave", "capacity", "growth"];

export interface Event {
  readonly kind: EventKind;
  readonly after: Cluster;
  readonly dead: Set<string>;
  readonly reason: MoveReason;
}

/** join: one member of median capacity; leave: the middle member dies; capacity: one member halves; growth: +10 % streams. */
export function applyEvent(c: Cluster, kind: EventKind, tag = "new"): Event {
  const { streams, members } = c;
  switch (kind) {
    case "join": {
      const caps = members.map((m) => m.capacity).sort((a, b) => a - b);
      return { kind, after: { streams, members: [...members, { id: `fp-${tag}`, capacity: caps[caps.length >> 1]! }] }, dead: new Set(), reason: "join" };
    }
    case "leave": {
      const gone = members[members.length >> 1]!;
      return { kind, after: { streams, members: members.filter((m) => m !== gone) }, dead: new Set([gone.id]), reason: "failover" };
    }
    case "capacity": {
      const i = Math.min(1, members.length - 1);
      const after = members.map((m, k) => (k === i ? { ...m, capacity: Math.max(1, Math.ceil(m.capacity / 2)) } : m));
      return { kind, after: { streams, members: after }, dead: new Set(), reason: "capacity" };
    }
    case "growth": {
      const extra = Math.max(1, Math.round(streams.length / 10));
      const top = streams.reduce((a, s) => Math.max(a, Number(s)), 0);
      const more = Array.from({ length: extra }, (_, i) => String(top + 1 + i));
      return { kind, after: { streams: [...streams, ...more], members }, dead: new Set(), reason: "catalog" };
    }
  }
}

/** Owner changes between two assignments, over every stream either knows or `streams` lists. */
export function countMoves(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>, streams: readonly string[]): number {
  let n = 0;
  const seen = new Set<string>();
  for (const s of [...streams, ...before.keys()]) {
    if (seen.has(s)) continue;
    seen.add(s);
    if ((before.get(s) ?? null) !== (after.get(s) ?? null)) n++;
  }
  return n;
}

function idOrder(members: readonly BenchMember[]): Int32Array {
  const pos = members.map((_, i) => i).sort((a, b) => (members[a]!.id < members[b]!.id ? -1 : 1));
  const rank = new Int32Array(members.length);
  pos.forEach((p, r) => (rank[p] = r));
  return rank;
}

/** The loads of a perfectly balanced placement: the quota targets from scratch. */
export function idealLoads(c: Cluster): Map<string, number> {
  const t = quotaTargets(c.streams.length, c.members.map((m) => m.capacity), new Int32Array(c.members.length), idOrder(c.members));
  return new Map(c.members.map((m, i) => [m.id, t[i]!]));
}

/**
 * The fewest owner changes that take a cluster holding `load` to a complete placement in
 * which every member is within ⌊share⌋..⌈share⌉ of `after`: streams must leave members
 * above ⌈share⌉ (or gone), members below ⌊share⌋ must receive, and streams nobody held
 * must be placed.
 */
export function minimumMoves(load: ReadonlyMap<string, number>, after: Cluster): number {
  const total = after.members.reduce((s, m) => s + m.capacity, 0);
  const n = after.streams.length;
  const placeable = Math.min(n, total);
  const present = new Map(after.members.map((m) => [m.id, m]));
  let held = 0;
  let excess = 0;
  for (const [id, l] of load) {
    held += l;
    const m = present.get(id);
    if (!m) excess += l;
    else excess += Math.max(0, l - Math.ceil(share(m, placeable, total)));
  }
  let deficit = 0;
  for (const m of after.members) deficit += Math.max(0, Math.floor(share(m, placeable, total)) - (load.get(m.id) ?? 0));
  return Math.max(excess + Math.max(0, placeable - held), deficit);
}

function share(m: BenchMember, n: number, total: number): number {
  return total === 0 ? 0 : Math.min(m.capacity, (n * m.capacity) / total);
}

export interface Balance {
  /** max |load − exact proportional share|, in streams (< 1 means every member is within ±1 of its target). */
  readonly maxDeviation: number;
  /** Streams of the catalog with no owner. */
  readonly unassigned: number;
  /** Streams held beyond a member's capacity. */
  readonly overCapacity: number;
}

export function balance(a: ReadonlyMap<string, string>, c: Cluster): Balance {
  const load = new Map<string, number>();
  let unassigned = 0;
  for (const s of c.streams) {
    const o = a.get(s);
    if (o === undefined) unassigned++;
    else load.set(o, (load.get(o) ?? 0) + 1);
  }
  const total = c.members.reduce((s, m) => s + m.capacity, 0);
  const placeable = Math.min(c.streams.length, total);
  let maxDeviation = 0;
  let overCapacity = 0;
  for (const m of c.members) {
    const l = load.get(m.id) ?? 0;
    maxDeviation = Math.max(maxDeviation, Math.abs(l - share(m, placeable, total)));
    overCapacity += Math.max(0, l - m.capacity);
  }
  return { maxDeviation, unassigned, overCapacity };
}

/**
 * Fraction of streams that hashed mode (shared/placement/hash-owners.ts: the assignor over
 * what live members hold) gives to another member than `a` does: what flipping the
 * cluster to hashed, or losing a leader that holds nothing, moves from placement `a`.
 */
export function hashedFlip(a: ReadonlyMap<string, string>, c: Cluster, policy: HashingPolicy): number {
  const held = new Map<string, string[]>(c.members.map((m) => [m.id, []]));
  for (const [s, o] of a) held.get(o)?.push(s);
  const owners = hashOwners(
    c.streams.map((id) => ({ id, url: "", name: "", metadata: {} })),
    c.members.map((m) => ({ id: m.id, weight: m.capacity, held: held.get(m.id)! })),
    policy,
  );
  let differ = 0;
  for (const s of c.streams) if (a.get(s) !== owners.get(s)) differ++;
  return c.streams.length === 0 ? 0 : differ / c.streams.length;
}

/** Fraction of streams whose owner differs from pure weighted rendezvous hashing over the same members. */
export function hashedSwitch(a: ReadonlyMap<string, string>, c: Cluster): number {
  const hrw = new Rendezvous(c.members.map((m) => ({ id: m.id, weight: m.capacity })));
  let differ = 0;
  for (const s of c.streams) if (a.get(s) !== hrw.owner(s)) differ++;
  return c.streams.length === 0 ? 0 : differ / c.streams.length;
}

/**
 * The least that fraction can be for any placement within the quota bounds: members
 * hashing gives more than ⌊share⌋ keep up to ⌈share⌉ when a rounding unit is theirs, and
 * everything above goes elsewhere. Σ max(0, hashing share − ⌊share⌋) minus the rounding
 * units that can go to such members, over N.
 */
export function hashedSwitchFloor(c: Cluster): number {
  const hrw = new Rendezvous(c.members.map((m) => ({ id: m.id, weight: m.capacity })));
  const got = new Map<string, number>();
  for (const s of c.streams) {
    const o = hrw.owner(s)!;
    got.set(o, (got.get(o) ?? 0) + 1);
  }
  const total = c.members.reduce((s, m) => s + m.capacity, 0);
  const n = c.streams.length;
  if (n === 0) return 0;
  let over = 0;
  let seats = Math.min(n, total);
  let wantSeat = 0;
  for (const m of c.members) {
    const exact = share(m, Math.min(n, total), total);
    const floor = Math.floor(exact);
    seats -= floor;
    const g = got.get(m.id) ?? 0;
    over += Math.max(0, g - floor);
    if (g > floor && floor < exact) wantSeat++;
  }
  return (over - Math.min(seats, wantSeat)) / n;
}

/** Places from scratch, then lets the strategy settle (up to 3 more rounds with nothing changed). */
export function settle(s: Strategy, c: Cluster): Map<string, string> {
  let a = s.place({ streams: c.streams, members: c.members, previous: null, dead: new Set(), reason: "catalog" });
  for (let i = 0; i < 3; i++) {
    const next = s.place({ streams: c.streams, members: c.members, previous: a, dead: new Set(), reason: "imbalance" });
    if (countMoves(a, next, c.streams) === 0) break;
    a = next;
  }
  return a;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median wall time of `runs` calls, after one untimed warm-up call. */
export function time(runs: number, f: () => unknown): number {
  f();
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    f();
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

/** A small seeded generator (mulberry32) for the churn sequence; the benchmark only. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
