/**
 * Laws of the assignor (shared/placement/assignor.ts), stated as fast-check properties: complete,
 * proportional, sticky (join, leave, growth, capacity change and drain move exactly the
 * minimum), hash-shaped, calm, a fixed point once settled, independent of input order.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { assign, type AssignInput, type AssignMember, type AssignPolicy, type AssignResult, type StreamConstraint } from "../../shared/placement/assignor.js";
import { measureImbalance, quotaTargets } from "../../shared/placement/targets.js";
import { Rendezvous } from "../../shared/placement/hash.js";
import type { MoveReason } from "../../shared/types.js";

const CALM: AssignPolicy = { imbalanceThreshold: 0.15, maxStreamDifference: 3, rebalanceAllowed: false };
const EAGER: AssignPolicy = { imbalanceThreshold: 0, maxStreamDifference: 0, rebalanceAllowed: true };
const FORCE: AssignPolicy = { ...CALM, force: true };

const policies = fc.record({
  imbalanceThreshold: fc.constantFrom(0, 0.15, 0.5, 10),
  maxStreamDifference: fc.constantFrom(0, 1, 3, 1000),
  rebalanceAllowed: fc.boolean(),
  force: fc.boolean(),
  rebalanceReason: fc.constantFrom("imbalance" as const, "join" as const, "capacity" as const),
});

const memberList = (min = 1) =>
  fc.uniqueArray(
    fc.record({ id: fc.stringMatching(/^m[0-9a-z]{1,3}$/), capacity: fc.integer({ min: 0, max: 40 }), draining: fc.boolean() }),
    { selector: (m) => m.id, minLength: min, maxLength: 10 },
  );
const streamList = fc.uniqueArray(fc.integer({ min: 1, max: 5000 }).map(String), { maxLength: 250 });

/** A whole input: members, streams, and a current assignment that may point anywhere. */
const inputs = fc
  .tuple(memberList(), streamList, policies, fc.infiniteStream(fc.integer({ min: 0, max: 100 })))
  .map(([members, streams, policy, dice]) => {
    const owners = [...members.map((m) => m.id), "gone-1", "gone-2"];
    const current = new Map<string, string>();
    const it = dice[Symbol.iterator]();
    for (const s of streams) {
      const d = it.next().value as number;
      if (d < 70) current.set(s, owners[d % owners.length]!);
    }
    current.set("left-the-catalog", owners[0]!);
    return { streams, members, current, dead: new Set(["gone-1"]), policy } satisfies AssignInput;
  });

const usable = (ms: readonly AssignMember[]) => ms.filter((m) => !m.draining && m.capacity > 0);
const capOf = (ms: readonly AssignMember[]) => usable(ms).reduce((s, m) => s + m.capacity, 0);

function loads(r: AssignResult): Map<string, number> {
  const out = new Map<string, number>();
  for (const o of r.assignment.values()) out.set(o, (out.get(o) ?? 0) + 1);
  return out;
}

/**
 * The least owner changes that bring `load` (any ids) within the quota bounds
 * ⌊share⌋..⌈share⌉ of `members` for n streams, with `free` unheld streams to place:
 * streams must leave members above ⌈share⌉ or not usable, members below ⌊share⌋ must receive.
 */
function minimumMoves(n: number, members: readonly AssignMember[], load: ReadonlyMap<string, number>, free = 0): number {
  const us = new Map(usable(members).map((m) => [m.id, m]));
  const total = capOf(members);
  const share = (m: AssignMember) => (n >= total ? m.capacity : (n * m.capacity) / total);
  let excess = 0;
  for (const [id, l] of load) {
    const m = us.get(id);
    excess += m ? Math.max(0, l - Math.ceil(share(m))) : l;
  }
  let deficit = 0;
  for (const m of us.values()) deficit += Math.max(0, Math.floor(share(m)) - (load.get(m.id) ?? 0));
  return Math.max(excess + free, deficit);
}

/**
 * Whether every member can keep what it holds in a balanced placement of n streams: the
 * members' max(load, ⌊share⌋) fit in n. Not so in the rare case where a large member's
 * share crosses an integer before a small member's remainder does (the apportionment
 * paradoxes); then some stream must move, and the assignor moves the fewest.
 */
function fits(load: ReadonlyMap<string, number>, members: readonly AssignMember[], n: number): boolean {
  const total = capOf(members);
  return members.reduce((sum, m) => sum + Math.max(load.get(m.id) ?? 0, Math.floor((n * m.capacity) / total)), 0) <= n;
}

function settle(members: AssignMember[], streams: string[]): AssignResult {
  return assign({ streams, members, current: new Map(), policy: FORCE });
}

const moved = (r: AssignResult) => r.moves.filter((m) => m.from !== null || m.to !== null);

describe("assign: every input", () => {
  it("places every stream once, within capacity, and reports what does not fit", () => {
    fc.assert(
      fc.property(inputs, (input) => {
        const r = assign(input);
        const placed = new Set(r.assignment.keys());
        for (const s of r.unassigned) expect(placed.has(s)).toBe(false);
        expect(placed.size + r.unassigned.length).toBe(input.streams.length);
        expect(r.unassigned.length).toBe(Math.max(0, input.streams.length - capOf(input.members)));
        const l = loads(r);
        for (const m of input.members) {
          expect(l.get(m.id) ?? 0).toBeLessThanOrEqual(m.draining ? 0 : m.capacity);
        }
        for (const o of l.keys()) expect(usable(input.members).some((m) => m.id === o)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it("sets proportional targets: ⌊share⌋ or ⌈share⌉, summing to min(N, Σcap), never above capacity", () => {
    fc.assert(
      fc.property(inputs, (input) => {
        const r = assign(input);
        const n = input.streams.length;
        const total = capOf(input.members);
        let sum = 0;
        for (const m of input.members) {
          const t = r.targets.get(m.id)!;
          sum += t;
          if (m.draining || m.capacity <= 0) {
            expect(t).toBe(0);
            continue;
          }
          const share = n >= total ? m.capacity : (n * m.capacity) / total;
          expect(t).toBeGreaterThanOrEqual(Math.floor(share));
          expect(t).toBeLessThanOrEqual(Math.min(Math.ceil(share), m.capacity));
        }
        expect(sum).toBe(Math.min(n, total));
      }),
      { numRuns: 300 },
    );
  });

  it("reports exactly the owner changes as moves, each with a reason that fits", () => {
    fc.assert(
      fc.property(inputs, (input) => {
        const r = assign(input);
        const byStream = new Map(r.moves.map((m) => [m.stream, m]));
        expect(byStream.size).toBe(r.moves.length);
        const all = new Set([...input.streams, ...input.current.keys()]);
        const live = new Map(usable(input.members).map((m) => [m.id, m]));
        for (const s of all) {
          const before = input.current.get(s) ?? null;
          const after = r.assignment.get(s) ?? null;
          const mv = byStream.get(s);
          if (before === after) {
            expect(mv).toBeUndefined();
            continue;
          }
          expect(mv).toEqual({ stream: s, from: before, to: after, reason: expect.any(String) });
          const owner = input.members.find((m) => m.id === before);
          if (!input.streams.includes(s) || before === null) expect(mv!.reason).toBe("catalog");
          else if (owner?.draining) expect(mv!.reason).toBe("drain");
          else if (!owner) expect(mv!.reason).toBe("failover");
          else if (!live.has(before)) expect(mv!.reason).toBe("capacity");
          else expect(["capacity", "manual", input.policy.rebalanceReason]).toContain(mv!.reason);
        }
      }),
      { numRuns: 400 },
    );
  });

  it("is calm: a stream on a live member within capacity moves only in a permitted rebalance", () => {
    fc.assert(
      fc.property(inputs, (input) => {
        const policy = { ...input.policy, force: false, rebalanceAllowed: false };
        const r = assign({ ...input, policy });
        expect(r.rebalanced).toBe(false);
        const l = new Map<string, number>();
        for (const [s, o] of input.current) if (input.streams.includes(s)) l.set(o, (l.get(o) ?? 0) + 1);
        for (const mv of r.moves) {
          const m = usable(input.members).find((u) => u.id === mv.from);
          if (m && input.streams.includes(mv.stream)) {
            expect(mv.reason).toBe("capacity");
            expect(l.get(m.id)!).toBeGreaterThan(m.capacity);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("does not rebalance below the thresholds, and rebalances to the exact targets when forced", () => {
    fc.assert(
      fc.property(inputs, (input) => {
        const lax = assign({ ...input, policy: { imbalanceThreshold: 1e9, maxStreamDifference: 1e9, rebalanceAllowed: true } });
        expect(lax.rebalanced).toBe(false);
        const forced = assign({ ...input, policy: FORCE });
        const l = loads(forced);
        for (const m of usable(input.members)) expect(l.get(m.id) ?? 0).toBe(forced.targets.get(m.id));
        expect(forced.imbalanceAfter).toEqual({ ratio: 0, streams: 0 });
      }),
      { numRuns: 300 },
    );
  });

  it("is a fixed point: computing again on its own result moves nothing, whatever the policy", () => {
    fc.assert(
      fc.property(inputs, policies, (input, again) => {
        const r = assign(input);
        const second = assign({ ...input, current: r.assignment });
        expect(second.moves).toEqual([]);
        const settled = assign({ ...input, policy: FORCE });
        expect(assign({ ...input, current: settled.assignment, policy: again }).moves).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it("does not depend on the order of streams or members", () => {
    fc.assert(
      fc.property(inputs, (input) => {
        const a = assign(input);
        const b = assign({ ...input, streams: [...input.streams].reverse(), members: [...input.members].reverse() });
        expect(new Map([...b.assignment].sort())).toEqual(new Map([...a.assignment].sort()));
        expect([...b.unassigned].sort()).toEqual([...a.unassigned].sort());
      }),
      { numRuns: 200 },
    );
  });

  it("does not depend on what was computed before it (the hash it keeps between calls)", () => {
    // The same members with other capacities, or in another order, or one fewer: a hash
    // kept from such a call must never be used for this one.
    const neighbours = fc.tuple(inputs, fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 10, maxLength: 10 }), fc.constantFrom("capacities", "order", "one fewer"));
    fc.assert(
      fc.property(neighbours, ([input, caps, kind]) => {
        const members =
          kind === "capacities" ? input.members.map((m, i) => ({ ...m, capacity: caps[i]! })) : kind === "order" ? [...input.members].reverse() : input.members.slice(1);
        assign({ ...input, members });
        const after = assign(input);
        assign({ ...input, members: [{ id: "someone-else", capacity: 7, draining: false }] });
        const fresh = assign(input);
        expect(after).toEqual(fresh);
      }),
      { numRuns: 300 },
    );
  });
});

/** A settled cluster: members with capacities, streams, the settled assignment. */
const settledCluster = fc
  .tuple(
    fc.uniqueArray(fc.record({ id: fc.stringMatching(/^m[0-9a-z]{1,3}$/), capacity: fc.integer({ min: 1, max: 60 }), draining: fc.constant(false) }), {
      selector: (m) => m.id,
      minLength: 2,
      maxLength: 12,
    }),
    fc.integer({ min: 0, max: 400 }),
  )
  .map(([members, n]) => {
    const streams = Array.from({ length: n }, (_, i) => `s${i}`);
    return { members, streams, settled: settle(members, streams) };
  });

describe("assign: the minimum moves from a settled cluster", () => {
  it("a join moves exactly the minimum, all for the join", () => {
    fc.assert(
      fc.property(settledCluster, fc.integer({ min: 1, max: 60 }), ({ members, streams, settled }, capacity) => {
        fc.pre(streams.length <= capOf(members));
        const after = [...members, { id: "newcomer", capacity, draining: false }];
        const r = assign({ streams, members: after, current: settled.assignment, policy: { ...EAGER, rebalanceReason: "join" } });
        const min = minimumMoves(streams.length, after, loads(settled));
        expect(moved(r).length).toBe(min);
        // Usually all go to the newcomer; when a share becomes exact another member may
        // take the rounding unit instead, at the same count.
        for (const mv of r.moves) expect(mv.reason).toBe("join");
        expect(loads(r).get("newcomer") ?? 0).toBe(r.targets.get("newcomer"));
      }),
      { numRuns: 300 },
    );
  });

  it("a leave moves only the leaver's streams, unless no balanced placement could keep the others (then the minimum)", () => {
    fc.assert(
      fc.property(settledCluster, fc.nat(), ({ members, streams, settled }, pick) => {
        const gone = members[pick % members.length]!;
        const rest = members.filter((m) => m !== gone);
        const r = assign({ streams, members: rest, current: settled.assignment, dead: new Set([gone.id]), policy: EAGER });
        const l = loads(settled);
        const placeable = Math.min(streams.length, capOf(rest));
        expect(moved(r).length).toBe(minimumMoves(placeable, rest, l, Math.max(0, placeable - settled.assignment.size)));
        expect(r.unassigned.length).toBe(streams.length - placeable);
        if (fits(l, rest, placeable)) for (const mv of r.moves) expect(mv).toMatchObject({ from: gone.id, reason: "failover" });
      }),
      { numRuns: 300 },
    );
  });

  it("catalog growth moves no old stream, unless no balanced placement could keep them all (then the minimum)", () => {
    fc.assert(
      fc.property(settledCluster, fc.integer({ min: 1, max: 100 }), ({ members, streams, settled }, extra) => {
        const more = [...streams, ...Array.from({ length: extra }, (_, i) => `new${i}`)];
        const r = assign({ streams: more, members, current: settled.assignment, policy: EAGER });
        const l = loads(settled);
        const placeable = Math.min(more.length, capOf(members));
        expect(moved(r).length).toBe(minimumMoves(placeable, members, l, Math.max(0, placeable - settled.assignment.size)));
        if (fits(l, members, placeable)) for (const mv of r.moves) expect(mv).toMatchObject({ from: null, reason: "catalog" });
      }),
      { numRuns: 300 },
    );
  });

  it("a capacity change moves exactly the minimum", () => {
    fc.assert(
      fc.property(settledCluster, fc.nat(), fc.integer({ min: 1, max: 60 }), ({ members, streams, settled }, pick, capacity) => {
        const i = pick % members.length;
        const after = members.map((m, k) => (k === i ? { ...m, capacity } : m));
        const r = assign({ streams, members: after, current: settled.assignment, policy: { ...EAGER, rebalanceReason: "capacity" } });
        const placeable = Math.min(streams.length, capOf(after));
        // Streams beyond the new total capacity must leave (counted as excess); streams
        // that could not be placed before and now can must arrive (counted as free).
        const free = Math.max(0, placeable - settled.assignment.size);
        expect(moved(r).length).toBe(minimumMoves(placeable, after, loads(settled), free));
      }),
      { numRuns: 300 },
    );
  });

  it("a drain moves only the drained member's streams, and an undrain gives it its share back", () => {
    fc.assert(
      fc.property(settledCluster, fc.nat(), ({ members, streams, settled }, pick) => {
        const i = pick % members.length;
        const id = members[i]!.id;
        const drained = members.map((m, k) => (k === i ? { ...m, draining: true } : m));
        const r = assign({ streams, members: drained, current: settled.assignment, policy: CALM });
        const had = [...settled.assignment.values()].filter((o) => o === id).length;
        expect(r.moves.length).toBe(had);
        for (const mv of r.moves) expect(mv).toMatchObject({ from: id, reason: "drain" });
        expect([...r.assignment.values()]).not.toContain(id);
        const back = assign({ streams, members, current: r.assignment, policy: { ...EAGER, rebalanceReason: "join" } });
        const l = loads(back);
        expect(l.get(id) ?? 0).toBe(back.targets.get(id));
        const placeable = Math.min(streams.length, capOf(members));
        const free = Math.max(0, placeable - r.assignment.size);
        expect(moved(back).length).toBe(minimumMoves(placeable, members, loads(r), free));
      }),
      { numRuns: 300 },
    );
  });
});

describe("assign: hash-shaped", () => {
  it("from scratch, differs from pure hashing on exactly Σ max(0, hashing share − target) streams (the least possible)", () => {
    fc.assert(
      fc.property(settledCluster, ({ members, streams, settled }) => {
        const hrw = new Rendezvous(members.map((m) => ({ id: m.id, weight: m.capacity })));
        const share = new Map<string, number>();
        let differ = 0;
        for (const s of streams) {
          const o = hrw.owner(s)!;
          share.set(o, (share.get(o) ?? 0) + 1);
          if (settled.assignment.get(s) !== o) differ++;
        }
        const least = members.reduce((sum, m) => sum + Math.max(0, (share.get(m.id) ?? 0) - settled.targets.get(m.id)!), 0);
        expect(differ).toBe(least);
      }),
      { numRuns: 200 },
    );
  });

  it("a stream placed away from its hashing owner only when that owner was full", () => {
    fc.assert(
      fc.property(inputs, (input) => {
        const r = assign(input);
        const hrw = new Rendezvous(usable(input.members).map((m) => ({ id: m.id, weight: m.capacity })));
        const l = loads(r);
        for (const mv of r.moves) {
          if (mv.to === null) continue;
          const o = hrw.owner(mv.stream)!;
          if (mv.to !== o) expect(l.get(o) ?? 0).toBeGreaterThanOrEqual(r.targets.get(o)!);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("assign: handoffs", () => {
  it("reports a stream whose handoff completed as a move from the row's owner, with the row's reason", () => {
    const members = [{ id: "a", capacity: 5, draining: false }, { id: "b", capacity: 5, draining: true }];
    const previous = new Map<string, { owner: string; reason: MoveReason; state: string }>([
      ["s1", { owner: "b", reason: "drain", state: "revoking" }],
      ["s2", { owner: "b", reason: "released", state: "revoking" }],
      ["s3", { owner: "a", reason: "catalog", state: "active" }],
    ]);
    const r = assign({ streams: ["s1", "s2", "s3"], members, current: new Map(), previous, policy: CALM });
    expect(r.moves).toEqual([
      { stream: "s1", from: "b", to: "a", reason: "drain" },
      { stream: "s2", from: "b", to: "a", reason: "released" },
      { stream: "s3", from: null, to: "a", reason: "catalog" },
    ]);
  });
});

describe("quotaTargets", () => {
  it("is largest remainder when nobody holds anything", () => {
    expect([...quotaTargets(300, [100, 150, 50], [0, 0, 0], [0, 1, 2])]).toEqual([100, 150, 50]);
    expect([...quotaTargets(100, [50, 50, 50], [0, 0, 0], [0, 1, 2])]).toEqual([34, 33, 33]);
    expect([...quotaTargets(100, [50, 50, 50], [0, 0, 40], [0, 1, 2])]).toEqual([33, 33, 34]);
    expect([...quotaTargets(500, [100, 150, 50], [0, 0, 0], [0, 1, 2])]).toEqual([100, 150, 50]);
  });

  it("fails over the documents' example: 47 streams of a dead member go 24 → A, 23 → B, nothing else moves", () => {
    const members = ["A", "B"].map((id) => ({ id, capacity: 100, draining: false }));
    const current = new Map<string, string>();
    for (let i = 0; i < 141; i++) current.set(`s${i}`, i < 47 ? "A" : i < 94 ? "B" : "C");
    const r = assign({ streams: [...current.keys()], members, current, dead: new Set(["C"]), policy: CALM });
    expect(r.moves.length).toBe(47);
    for (const m of r.moves) expect(m).toMatchObject({ from: "C", reason: "failover" });
    expect(r.moves.filter((m) => m.to === "A").length + r.moves.filter((m) => m.to === "B").length).toBe(47);
    expect(new Set([r.moves.filter((m) => m.to === "A").length, r.moves.filter((m) => m.to === "B").length])).toEqual(new Set([24, 23]));
  });

  it("rebalances the documents' example 45/25/30 of 50 each to 34/33/33 moving 11 + 8", () => {
    const members = ["a", "b", "c"].map((id) => ({ id, capacity: 50, draining: false }));
    const current = new Map<string, string>();
    for (let i = 0; i < 100; i++) current.set(`s${i}`, i < 45 ? "a" : i < 70 ? "b" : "c");
    const r = assign({ streams: [...current.keys()], members, current, policy: { ...CALM, rebalanceAllowed: true } });
    expect(r.rebalanced).toBe(true);
    expect(Object.fromEntries(loads(r))).toEqual({ a: 34, b: 33, c: 33 });
    expect(r.moves.length).toBe(11);
    expect(r.moves.filter((m) => m.to === "b").length).toBe(8);
  });
});

describe("assign: refusals", () => {
  /** Inputs with refusals: streams given up by their owner, by a member that does not hold them, or by one gone. */
  const refusing = fc.tuple(inputs, fc.infiniteStream(fc.integer({ min: 0, max: 100 }))).map(([input, dice]) => {
    const refused = new Map<string, string>();
    const it = dice[Symbol.iterator]();
    const ids = input.members.map((m) => m.id);
    for (const s of input.streams) {
      const d = it.next().value as number;
      if (d < 15) refused.set(s, input.current.get(s) ?? ids[d % ids.length]!);
      else if (d < 20) refused.set(s, ids[d % ids.length]!);
    }
    return { ...input, refused } satisfies AssignInput;
  });

  it("never places a refused stream on the member that gave it up, and reports a result consistent with itself", () => {
    fc.assert(
      fc.property(refusing, (input) => {
        const r = assign(input);
        const streams = new Set(input.streams);
        for (const [s, who] of input.refused) expect(r.assignment.get(s)).not.toBe(who);
        // Every stream once: placed or unassigned.
        expect(new Set(r.unassigned).size).toBe(r.unassigned.length);
        for (const s of input.streams) expect(r.assignment.has(s)).toBe(!r.unassigned.includes(s));
        expect(r.assignment.size + r.unassigned.length).toBe(streams.size);
        // Moves are exactly the differences between `current` and the assignment.
        const moved = new Map(r.moves.map((m) => [m.stream, m]));
        expect(moved.size).toBe(r.moves.length);
        for (const s of new Set([...input.streams, ...input.current.keys()])) {
          const from = input.current.get(s) ?? null;
          const to = r.assignment.get(s) ?? null;
          const m = moved.get(s);
          if (from === to) expect(m).toBeUndefined();
          else expect(m && { from: m.from, to: m.to }).toEqual({ from, to });
        }
        // A refused stream that leaves its refuser says why.
        for (const [s, who] of input.refused) if (input.current.get(s) === who) expect(moved.get(s)?.reason).toBe("released");
        // Targets: every member has one, within capacity, summing to what can be placed.
        const us = new Set(usable(input.members).map((m) => m.id));
        expect([...r.targets.keys()].sort()).toEqual(input.members.map((m) => m.id).sort());
        let sum = 0;
        for (const m of input.members) {
          const t = r.targets.get(m.id)!;
          expect(t).toBeLessThanOrEqual(us.has(m.id) ? m.capacity : 0);
          sum += t;
        }
        expect(sum).toBe(Math.min(streams.size, capOf(input.members)));
        // Nobody above capacity; the reported imbalance is the assignment's.
        const load = loads(r);
        for (const m of input.members) expect(load.get(m.id) ?? 0).toBeLessThanOrEqual(us.has(m.id) ? m.capacity : 0);
        expect(r.imbalanceAfter).toEqual(measureImbalance(input.members, load, r.targets));
      }),
      { numRuns: 400 },
    );
  });

  it("sends a refused stream to the usable member with the most room, or leaves it unassigned", () => {
    const members = [
      { id: "a", capacity: 2, draining: false },
      { id: "b", capacity: 3, draining: false },
      { id: "c", capacity: 9, draining: true },
    ];
    const current = new Map([
      ["s1", "a"],
      ["s2", "a"],
      ["s3", "b"],
    ]);
    const r = assign({ streams: ["s1", "s2", "s3"], members, current, refused: new Map([["s1", "a"]]), policy: CALM });
    expect(r.assignment.get("s1")).toBe("b");
    expect(r.moves).toEqual([{ stream: "s1", from: "a", to: "b", reason: "released" }]);
    const full = assign({ streams: ["s1", "s2"], members: [members[0]!], current: new Map([["s1", "a"], ["s2", "a"]]), refused: new Map([["s1", "a"]]), policy: CALM });
    expect(full.unassigned).toEqual(["s1"]);
    expect(full.moves).toEqual([{ stream: "s1", from: "a", to: null, reason: "released" }]);
  });
});

describe("assign: constraints (labels, failure memory, degraded workers)", () => {
  /** Inputs where some streams may only go to some members; some constraints evict. */
  const constrained = fc.tuple(inputs, fc.infiniteStream(fc.integer({ min: 0, max: 100 }))).map(([input, dice]) => {
    const constraints = new Map<string, StreamConstraint>();
    const it = dice[Symbol.iterator]();
    const ids = input.members.map((m) => m.id);
    for (const s of input.streams) {
      const d = it.next().value as number;
      if (d >= 30) continue;
      const allowed = new Set(ids.filter((_, i) => (d + i) % 3 !== 0));
      constraints.set(s, { allowed: (m) => allowed.has(m), evict: d % 2 === 0, reason: d % 4 === 0 ? "failing" : "catalog", rank: d % 5 === 0 ? (m) => (m < "m5" ? 1 : 0) : undefined });
    }
    return { ...input, constraints } satisfies AssignInput;
  });

  it("never places a constrained stream on a member it does not allow; a constraint never moves a stream that stays allowed when nothing rebalances", () => {
    fc.assert(
      fc.property(constrained, (input) => {
        const r = assign(input);
        for (const [s, c] of input.constraints) {
          const to = r.assignment.get(s);
          if (to !== undefined) expect(c.allowed(to)).toBe(true);
        }
        const free = assign({ ...input, constraints: undefined });
        const moved = new Map(r.moves.map((m) => [m.stream, m]));
        for (const [s, c] of input.constraints) {
          const from = input.current.get(s);
          // Allowed where it is, not evicted, and not moved without the constraints either: it
          // stays — when nothing rebalances. A rebalance may pick it instead of another stream
          // because OTHER streams' constraints changed the loads (a drained stream allowed only
          // on its member), which is balancing, not this constraint moving it.
          const rebalances = input.policy.force === true || input.policy.rebalanceAllowed;
          if (!rebalances && from !== undefined && c.allowed(from) && !free.moves.some((m) => m.stream === s)) expect(moved.get(s)).toBeUndefined();
        }
        const us = new Set(usable(input.members).map((m) => m.id));
        const load = loads(r);
        for (const m of input.members) expect(load.get(m.id) ?? 0).toBeLessThanOrEqual(us.has(m.id) ? m.capacity : 0);
        expect(r.assignment.size + r.unassigned.length).toBe(new Set(input.streams).size);
      }),
      { numRuns: 300 },
    );
  });

  it("an evicting constraint moves the stream off a member it does not allow, with its reason", () => {
    const members = [
      { id: "a", capacity: 5, draining: false },
      { id: "b", capacity: 5, draining: false },
    ];
    const r = assign({ streams: ["s1", "s2"], members, current: new Map([["s1", "a"], ["s2", "a"]]), constraints: new Map([["s1", { allowed: (m: string) => m !== "a", evict: true, reason: "failing" as const }]]), policy: CALM });
    expect(r.moves).toEqual([{ stream: "s1", from: "a", to: "b", reason: "failing" }]);
  });
});
