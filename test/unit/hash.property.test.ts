/**
 * Laws of weighted rendezvous hashing (shared/placement/hash.ts): the same owner everywhere, only
 * the changed member's keys move, shares follow the weights, and the fast paths (equal
 * weights, cuts for mixed weights, candidate subsets) agree exactly with the definition.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hashString, pairHash, Rendezvous, score, simdKernelAvailable, type HashMember } from "../../shared/placement/hash.js";

/** The definition, written the slow way: highest score, then higher pair hash, then lower index. */
function reference(r: Rendezvous, streamHash: number, allowed: (i: number) => boolean = () => true): number {
  let best = -1;
  let bs = 0;
  let bh = 0;
  for (let i = 0; i < r.size; i++) {
    if (!allowed(i)) continue;
    const h = r.pairHashOf(streamHash, i);
    const s = score(h, r.weights[i]!);
    if (best < 0 || s > bs || (s === bs && h > bh)) {
      best = i;
      bs = s;
      bh = h;
    }
  }
  return best;
}

const memberId = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);
const members = (weights: fc.Arbitrary<number>) =>
  fc.uniqueArray(fc.record({ id: memberId, weight: weights }), { selector: (m) => m.id, minLength: 1, maxLength: 40 });
const keys = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 150 });

describe("hashString and the pair hash", () => {
  it("are fixed functions: these values must never change, or agents of different versions disagree", () => {
    expect(["", "1", "92", "abc", "stream-100000"].map(hashString)).toEqual([2872998923, 1428125071, 2210153061, 482950588, 690108539]);
    expect(pairHash(1, 2)).toBe(pairHash(1, 2));
    const eq = new Rendezvous(["a", "b", "c"].map((id) => ({ id, weight: 1 })));
    expect(Array.from({ length: 20 }, (_, i) => eq.owner(String(i + 1))).join("")).toBe("baaaabcccacbbbbbaaba");
    const mixed = new Rendezvous([{ id: "a", weight: 10 }, { id: "b", weight: 20 }, { id: "c", weight: 30 }]);
    expect(Array.from({ length: 20 }, (_, i) => mixed.owner(String(i + 1))).join("")).toBe("cacccbcccacbbbcccaba");
  });
});

describe("Rendezvous", () => {
  it("gives the same owner on every agent, whatever order or duplicates its member list has", () => {
    fc.assert(
      fc.property(members(fc.integer({ min: 1, max: 50 })), keys, fc.integer(), (ms, ks, seed) => {
        const shuffled = [...ms].sort((a, b) => (hashString(a.id + seed) - hashString(b.id + seed)));
        const a = new Rendezvous(ms);
        const b = new Rendezvous([...shuffled, ...shuffled.slice(0, 3)]);
        for (const k of ks) expect(b.owner(k)).toBe(a.owner(k));
      }),
      { numRuns: 100 },
    );
  });

  it("agrees exactly with the definition, for equal and for mixed weights", () => {
    for (const weights of [fc.constant(7), fc.integer({ min: 1, max: 1000 }), fc.double({ min: 0.01, max: 5, noNaN: true })]) {
      fc.assert(
        fc.property(members(weights), fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 200 }), (ms, hs) => {
          const r = new Rendezvous(ms);
          for (const h of hs) expect(r.ownerIndex(h)).toBe(reference(r, h));
        }),
        { numRuns: 60 },
      );
    }
  });

  it("answers batches (the SIMD kernel) exactly as one stream at a time", () => {
    expect(simdKernelAvailable()).toBe(true);
    for (const weights of [fc.constant(100), fc.integer({ min: 1, max: 1000 }), fc.double({ min: 0.001, max: 1e6, noNaN: true })]) {
      fc.assert(
        fc.property(
          fc.uniqueArray(fc.record({ id: memberId, weight: weights }), { selector: (m) => m.id, minLength: 16, maxLength: 300 }),
          fc.integer({ min: 0, max: 0xffffffff }),
          (ms, seed) => {
            const r = new Rendezvous(ms);
            const hs = Uint32Array.from({ length: Math.ceil(60_000 / r.size) + 7 }, (_, k) => hashString(`${seed}/${k}`));
            const batch = r.ownerIndexes(hs);
            hs.forEach((h, k) => expect(batch[k]).toBe(reference(r, h)));
          },
        ),
        { numRuns: 15 },
      );
    }
  });

  it("picks among a subset exactly as the definition restricted to that subset", () => {
    fc.assert(
      fc.property(
        members(fc.integer({ min: 1, max: 300 })),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 100 }),
        fc.integer({ min: 1, max: 7 }),
        (ms, hs, mod) => {
          const r = new Rendezvous(ms);
          const subset = Int32Array.from([...Array(r.size).keys()].filter((i) => i % mod !== 1).reverse());
          const inSubset = new Set(subset);
          for (const h of hs) {
            expect(r.bestAmong(h, subset, subset.length)).toBe(reference(r, h, (i) => inSubset.has(i)));
            expect(r.bestAllowed(h, (i) => inSubset.has(i))).toBe(reference(r, h, (i) => inSubset.has(i)));
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it("moves only the changed member's keys on a join, a leave or a weight change", () => {
    fc.assert(
      fc.property(
        members(fc.integer({ min: 1, max: 100 })),
        keys,
        fc.record({ id: memberId, weight: fc.integer({ min: 1, max: 100 }) }),
        fc.integer({ min: 1, max: 100 }),
        (ms, ks, extra, newWeight) => {
          const before = new Rendezvous(ms);
          const check = (after: Rendezvous, changed: string) => {
            for (const k of ks) {
              const a = before.owner(k);
              const b = after.owner(k);
              if (a !== b) expect(a === changed || b === changed).toBe(true);
            }
          };
          if (!ms.some((m) => m.id === extra.id)) check(new Rendezvous([...ms, extra]), extra.id); // join
          check(new Rendezvous(ms.slice(1)), ms[0]!.id); // leave
          check(new Rendezvous(ms.map((m, i) => (i === 0 ? { ...m, weight: newWeight } : m))), ms[0]!.id); // weight
        },
      ),
      { numRuns: 150 },
    );
  });

  it("a weight increase only gains keys and a decrease only loses them", () => {
    fc.assert(
      fc.property(members(fc.integer({ min: 1, max: 100 })), keys, fc.integer({ min: 1, max: 100 }), (ms, ks, w) => {
        const target = ms[0]!;
        const after = new Rendezvous(ms.map((m, i) => (i === 0 ? { ...m, weight: w } : m)));
        const before = new Rendezvous(ms);
        for (const k of ks) {
          const a = before.owner(k);
          const b = after.owner(k);
          if (w > target.weight && a === target.id) expect(b).toBe(target.id);
          if (w < target.weight && a !== target.id) expect(b).toBe(a);
        }
      }),
      { numRuns: 150 },
    );
  });

  it("gives each member a share of keys close to its weight share", () => {
    const ms: HashMember[] = Array.from({ length: 20 }, (_, i) => ({ id: `fp-${i}`, weight: i < 10 ? 10 : 30 }));
    const r = new Rendezvous(ms);
    const counts = new Map<string, number>();
    const n = 200_000;
    for (let k = 0; k < n; k++) {
      const o = r.owner(String(k))!;
      counts.set(o, (counts.get(o) ?? 0) + 1);
    }
    // Expected 5,000 (weight 10) or 15,000 (weight 30); the binomial σ is ~70 and ~118.
    let chi2 = 0;
    for (const m of ms) {
      const expected = (n * m.weight) / 400;
      const got = counts.get(m.id) ?? 0;
      expect(Math.abs(got - expected)).toBeLessThan(5 * Math.sqrt(expected));
      chi2 += (got - expected) ** 2 / expected;
    }
    expect(chi2).toBeLessThan(45); // 19 degrees of freedom: p ≈ 0.001 at 43.8
  });

  it("ignores members with weight ≤ 0 and answers undefined with no members", () => {
    expect(new Rendezvous([]).owner("x")).toBeUndefined();
    expect(new Rendezvous([{ id: "a", weight: 0 }]).owner("x")).toBeUndefined();
    expect(new Rendezvous([{ id: "a", weight: 0 }, { id: "b", weight: 2 }]).owner("x")).toBe("b");
  });
});
