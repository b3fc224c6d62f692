/**
 * Hashed ownership (shared/placement/hash-owners.ts) is the leader's assignor run over what
 * live members hold, so:
 * - a settled leader placement is kept whole: flipping the cluster to hashed moves nothing;
 * - losing the leader moves only the leader's streams;
 * - a newcomer gets its share by the fewest moves;
 * - after any churn (joins, deaths, drains, capacity changes, catalog growth) a flip of a
 *   settled fleet moves nothing, and flipping back to the leader moves nothing either;
 * - the owners depend on what the inputs say, never on the order they come in.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { assign, type AssignMember, type AssignPolicy } from "../../shared/placement/assignor.js";
import { hashOwners, type HashingMember } from "../../shared/placement/hash-owners.js";
import type { Stream } from "../../shared/types.js";

const THRESHOLDS = { imbalanceThreshold: 0.15, maxStreamDifference: 3 };
const LEADER: AssignPolicy = { ...THRESHOLDS, rebalanceAllowed: true };
const stream = (id: string): Stream => ({ id, url: `u${id}`, name: id, metadata: {} });
const catalogOf = (n: number): Stream[] => Array.from({ length: n }, (_, i) => stream(String(i + 1)));

type Caps = Map<string, number>;

/** The leader's placement, settled (computing again moves nothing). */
function leaderSettle(caps: Caps, streams: readonly Stream[], current: ReadonlyMap<string, string>, policy = LEADER): Map<string, string> {
  const members: AssignMember[] = [...caps].map(([id, capacity]) => ({ id, capacity, draining: false }));
  let a = new Map(current);
  for (let i = 0; i < 3; i++) a = assign({ streams: streams.map((s) => s.id), members, current: a, policy }).assignment;
  return a;
}

/** Live members holding `assignment`, as hashing sees them. */
function holding(caps: Caps, assignment: ReadonlyMap<string, string>): HashingMember[] {
  const held = new Map<string, string[]>([...caps.keys()].map((id) => [id, []]));
  for (const [s, o] of assignment) held.get(o)?.push(s);
  return [...caps].map(([id, weight]) => ({ id, weight, held: held.get(id)! }));
}

const moved = (a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): string[] => [...new Set([...a.keys(), ...b.keys()])].filter((s) => a.get(s) !== b.get(s));

function loads(a: ReadonlyMap<string, string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const o of a.values()) out.set(o, (out.get(o) ?? 0) + 1);
  return out;
}

/** Fewest owner changes that take `load` within ⌊share⌋..⌈share⌉ of n streams over `caps`. */
function minimumMoves(n: number, caps: Caps, load: ReadonlyMap<string, number>): number {
  const total = [...caps.values()].reduce((s, c) => s + c, 0);
  const share = (c: number) => (n >= total ? c : (n * c) / total);
  let excess = 0;
  let deficit = 0;
  for (const [id, c] of caps) {
    const l = load.get(id) ?? 0;
    excess += Math.max(0, l - Math.ceil(share(c)));
    deficit += Math.max(0, Math.floor(share(c)) - l);
  }
  return Math.max(excess, deficit);
}

/** Whether every member can keep what it holds in a balanced placement (see the assignor's laws). */
function fits(caps: Caps, load: ReadonlyMap<string, number>, n: number): boolean {
  const total = [...caps.values()].reduce((s, c) => s + c, 0);
  return [...caps].reduce((sum, [id, c]) => sum + Math.max(load.get(id) ?? 0, Math.floor((n * c) / total)), 0) <= n;
}

const fleet = fc
  .record({
    caps: fc.uniqueArray(fc.record({ id: fc.stringMatching(/^m[0-9a-z]{1,3}$/), cap: fc.integer({ min: 1, max: 40 }) }), { selector: (m) => m.id, minLength: 2, maxLength: 12 }),
    streams: fc.integer({ min: 0, max: 300 }),
  })
  .map(({ caps, streams }) => {
    const c: Caps = new Map(caps.map((m) => [m.id, m.cap]));
    const catalog = catalogOf(streams);
    return { caps: c, catalog, leader: leaderSettle(c, catalog, new Map()) };
  });

describe("hashed ownership", () => {
  it("keeps a settled leader placement whole: flipping to hashed moves nothing", () => {
    fc.assert(
      fc.property(fleet, ({ caps, catalog, leader }) => {
        expect(moved(leader, hashOwners(catalog, holding(caps, leader), THRESHOLDS))).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it("losing the leader moves only the leader's streams", () => {
    fc.assert(
      fc.property(fleet, fc.nat(), ({ caps, catalog, leader }, pick) => {
        const gone = [...caps.keys()][pick % caps.size]!;
        const survivors = new Map([...caps].filter(([id]) => id !== gone));
        const kept = new Map([...leader].filter(([, o]) => o !== gone));
        fc.pre(fits(survivors, loads(kept), catalog.length));
        const after = hashOwners(catalog, holding(survivors, kept), THRESHOLDS);
        for (const s of moved(leader, after)) expect(leader.get(s)).toBe(gone);
        // Its streams are placed again as far as the survivors' capacity goes.
        const room = [...survivors.values()].reduce((s, c) => s + c, 0);
        expect(after.size).toBe(Math.min(catalog.length, room));
      }),
      { numRuns: 200 },
    );
  });

  it("a newcomer gets its share by the fewest moves", () => {
    fc.assert(
      fc.property(fleet, fc.integer({ min: 1, max: 40 }), ({ caps, catalog, leader }, cap) => {
        const total = [...caps.values()].reduce((s, c) => s + c, 0);
        fc.pre(catalog.length <= total);
        const after = new Map([...caps, ["newcomer", cap] as const]);
        const owners = hashOwners(catalog, holding(after, leader), THRESHOLDS);
        const changed = moved(leader, owners);
        // What the leader itself would do, and no more than the least that balances the
        // fleet (nothing at all while that stays within the thresholds).
        const byLeader = assign({ streams: catalog.map((s) => s.id), members: [...after].map(([id, capacity]) => ({ id, capacity, draining: false })), current: leader, policy: LEADER });
        expect(owners).toEqual(byLeader.assignment);
        expect([0, minimumMoves(catalog.length, after, loads(leader))]).toContain(changed.length);
        // A newcomer holding nothing is always past the threshold: it gets its whole target.
        expect(loads(owners).get("newcomer") ?? 0).toBe(byLeader.targets.get("newcomer"));
        expect(owners.size).toBe(catalog.length);
      }),
      { numRuns: 200 },
    );
  });

  it("does not depend on the order of the streams, of the members or of their held lists", () => {
    fc.assert(
      fc.property(fleet, fc.nat(), fc.integer({ min: 0, max: 40 }), ({ caps, catalog, leader }, seed, extra) => {
        // An unsettled view: a newcomer, a dead member, new streams, a stream held twice.
        const ids = [...caps.keys()];
        const view = new Map([...caps].filter(([id]) => id !== ids[0]));
        view.set("newcomer", 7);
        const grown = [...catalog, ...catalogOf(catalog.length + extra).slice(catalog.length)];
        const members = holding(view, leader);
        if (catalog.length > 0 && members.length > 1) members[0] = { ...members[0]!, held: [...members[0]!.held, catalog[0]!.id] };
        const a = hashOwners(grown, members, THRESHOLDS);
        const shuffle = <T>(xs: readonly T[], salt: number): T[] => xs.map((x, i) => [x, ((i + 1) * 2654435761 + seed * 40503 + salt) % 4294967291] as const).sort((p, q) => p[1] - q[1]).map((p) => p[0]);
        const b = hashOwners(shuffle(grown, 1), shuffle(members.map((m, i) => ({ ...m, held: shuffle(m.held, i + 2) })), 3), THRESHOLDS);
        expect(moved(a, b)).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it("a stream two members report holding counts as held by one of them, the same whatever the order", () => {
    const members: HashingMember[] = [
      { id: "b", weight: 10, held: ["1", "2"] },
      { id: "a", weight: 10, held: ["1", "3"] },
    ];
    const catalog = catalogOf(4);
    const one = hashOwners(catalog, members, THRESHOLDS);
    expect(one.get("1")).toBe("a");
    expect(one.get("2")).toBe("b");
    expect(one.get("3")).toBe("a");
    expect(hashOwners(catalog, [...members].reverse(), THRESHOLDS)).toEqual(one);
    // A holder that may keep nothing (draining: weight 0) yields it to one that may.
    expect(hashOwners(catalog, [{ ...members[0]! }, { ...members[1]!, weight: 0 }], THRESHOLDS).get("1")).toBe("b");
  });

  it("nobody owns more than its weight; what does not fit is owned by nobody", () => {
    const owners = hashOwners(catalogOf(30), [{ id: "a", weight: 10, held: [] }, { id: "b", weight: 5, held: [] }], THRESHOLDS);
    expect(loads(owners)).toEqual(new Map([["a", 10], ["b", 5]]));
  });
});

type Event =
  | { readonly kind: "join"; readonly cap: number }
  | { readonly kind: "death"; readonly pick: number }
  | { readonly kind: "drain"; readonly pick: number }
  | { readonly kind: "capacity"; readonly pick: number; readonly cap: number }
  | { readonly kind: "growth"; readonly count: number };

const events = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant("join" as const), cap: fc.integer({ min: 1, max: 40 }) }),
    fc.record({ kind: fc.constant("death" as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant("drain" as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant("capacity" as const), pick: fc.nat(), cap: fc.integer({ min: 0, max: 40 }) }),
    fc.record({ kind: fc.constant("growth" as const), count: fc.integer({ min: 1, max: 40 }) }),
  ),
  { minLength: 1, maxLength: 12 },
);

/** Applies one event to the fleet's capacities (0 = draining) and catalog size. */
function apply(caps: Caps, n: number, e: Event, joined: number): { caps: Caps; n: number } {
  const next = new Map(caps);
  const ids = [...caps.keys()];
  if (e.kind === "join") next.set(`j${joined}`, e.cap);
  else if (e.kind === "growth") return { caps, n: n + e.count };
  else if (ids.length > 1) {
    const id = ids[e.pick % ids.length]!;
    if (e.kind === "death") next.delete(id);
    else next.set(id, e.kind === "drain" ? 0 : e.cap);
  }
  return { caps: next, n };
}

describe("hashed ownership after churn", () => {
  it("a settled fleet flips to hashed with no move (≤ 5 % allowed, none seen), and back to the leader with none", () => {
    fc.assert(
      fc.property(fleet, events, fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }), ({ caps: caps0, catalog }, evs, cooldowns) => {
        let caps = caps0;
        let n = catalog.length;
        let leader = leaderSettle(caps, catalog, new Map());
        evs.forEach((e, k) => {
          ({ caps, n } = apply(caps, n, e, k));
          const live = new Map([...leader].filter(([, o]) => caps.has(o)));
          // The leader's tick right after the event: maybe still in its rebalance cooldown.
          leader = assign({ streams: catalogOf(n).map((s) => s.id), members: [...caps].map(([id, capacity]) => ({ id, capacity, draining: false })), current: live, policy: { ...LEADER, rebalanceAllowed: !cooldowns[k] } }).assignment;
        });
        const streams = catalogOf(n);
        leader = leaderSettle(caps, streams, leader);
        const hashed = hashOwners(streams, holding(caps, leader), THRESHOLDS);
        const flip = moved(leader, hashed).length;
        expect(flip).toBeLessThanOrEqual(0.05 * n);
        expect(flip).toBe(0);
        // And back: the leader adopts what hashing members hold.
        expect(moved(hashed, leaderSettle(caps, streams, hashed))).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it("churn served by hashing itself moves only what each event requires, and the leader keeps the result", () => {
    fc.assert(
      fc.property(fleet, events, ({ caps: caps0, catalog }, evs) => {
        let caps = caps0;
        let n = catalog.length;
        let owners = hashOwners(catalog, holding(caps, new Map()), THRESHOLDS);
        evs.forEach((e, k) => {
          ({ caps, n } = apply(caps, n, e, k));
          const live = new Map([...owners].filter(([, o]) => caps.has(o)));
          const next = hashOwners(catalogOf(n), holding(caps, live), THRESHOLDS);
          // A death moves only the dead member's streams, growth only new streams, when a
          // balanced placement can keep the others (the assignor's laws).
          if (fits(new Map([...caps].filter(([, c]) => c > 0)), loads(live), n)) {
            if (e.kind === "death") for (const s of moved(owners, next)) expect(caps.has(owners.get(s) ?? "")).toBe(false);
            if (e.kind === "growth") for (const s of moved(owners, next)) expect(owners.get(s)).toBeUndefined();
          }
          // Computing again on what members now hold moves nothing: the view settles in one step.
          expect(moved(next, hashOwners(catalogOf(n), holding(caps, next), THRESHOLDS))).toEqual([]);
          owners = next;
        });
        expect(moved(owners, leaderSettle(caps, catalogOf(n), owners))).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });
});
