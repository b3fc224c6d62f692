/**
 * The legacy static rule, exactly as fingerv7 computes it: int(index) % TOTAL_SERVERS == SERVER_ID − 1.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { legacyOwned, legacyServerFor, type LegacyMember } from "../../shared/legacy.js";

describe("legacyServerFor", () => {
  it("matches Python's int(index) % N == SERVER_ID - 1", () => {
    expect(legacyServerFor("92", 8)).toBe("5"); // 92 % 8 = 4 → server 5
    expect(legacyServerFor("8", 8)).toBe("1");
    expect(legacyServerFor("-1", 8)).toBe("8"); // Python: -1 % 8 == 7
    expect(legacyServerFor("+5", 8)).toBe("6");
    expect(legacyServerFor(" 7 ", 8)).toBe("8");
    expect(legacyServerFor("1_000", 8)).toBe("1");
  });
  it("leaves ids int() refuses to nobody", () => {
    for (const id of ["abc", "1.5", "1__0", "_1", "1_", "", "0x10"]) expect(legacyServerFor(id, 8)).toBeUndefined();
  });
  it("property: every integer id has exactly one legacy owner in 1..N", () => {
    fc.assert(
      fc.property(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.integer({ min: 1, max: 64 }), (k, n) => {
        const s = Number(legacyServerFor(String(k), n));
        expect(s).toBeGreaterThanOrEqual(1);
        expect(s).toBeLessThanOrEqual(n);
        expect((((k % n) + n) % n) + 1).toBe(s);
      }),
    );
  });
});

describe("legacyOwned", () => {
  const catalog = Array.from({ length: 12 }, (_, i) => ({ id: String(i + 1), url: "u", name: "n", metadata: {} }));
  const member = (id: string): LegacyMember => ({ id, lastHeartbeat: "", ageMs: 0, status: null, ip: null });
  it("gives each live legacy member its rule's streams, and nothing to one that now has a sidecar", () => {
    const owned = legacyOwned(catalog, [member("1"), member("2"), member("3")], 3, new Set(["3"]));
    expect([...owned].filter(([, o]) => o === "1").map(([s]) => s)).toEqual(["3", "6", "9", "12"]);
    expect([...owned].filter(([, o]) => o === "2").map(([s]) => s)).toEqual(["1", "4", "7", "10"]);
    expect([...owned.values()]).not.toContain("3");
  });
  it("is empty without LEGACY_TOTAL_SERVERS", () => {
    expect(legacyOwned(catalog, [member("1")], undefined, new Set()).size).toBe(0);
  });
});
