/**
 * The leader info's liveness (shared/leader-watch.ts): judged by when this agent saw it
 * change, on its own clock; Redis's clock only ever makes a first sighting older.
 */
import { describe, expect, it } from "vitest";
import { LeaderWatch, parsePub } from "../../shared/leader-watch.js";
import type { LeaderInfo } from "../../shared/types.js";

const L: LeaderInfo = { id: "L", epoch: 1, ready: true };
/** A publication: "<seq> <Redis ms> <TTL ms>". */
const pub = (seq: number, redisMs: number, ttlMs = 5000) => `${seq} ${redisMs} ${ttlMs}`;

describe("LeaderWatch", () => {
  it("live for the published TTL from the read that showed a change, absent after it unless it changes again", () => {
    const w = new LeaderWatch();
    expect(w.observe({ info: L, pub: pub(1, 100_000), redisNowMs: 100_000 }, 1000)).toEqual(L);
    // The same publication read again does not renew it.
    expect(w.observe({ info: L, pub: pub(1, 100_000), redisNowMs: 104_000 }, 5000)).toEqual(L);
    expect(w.live(5999)).toEqual(L);
    expect(w.live(6000)).toBeUndefined();
    expect(w.observe({ info: L, pub: pub(1, 100_000), redisNowMs: 105_500 }, 6500)).toBeUndefined();
    // A new publication: live again, for its own TTL.
    expect(w.observe({ info: L, pub: pub(2, 105_600, 2000), redisNowMs: 105_600 }, 6600)).toEqual(L);
    expect(w.live(8599)).toEqual(L);
    expect(w.live(8600)).toBeUndefined();
  });

  it("absent at once when cleared, or when what is stored does not parse", () => {
    const w = new LeaderWatch();
    w.observe({ info: L, pub: pub(1, 0), redisNowMs: 0 }, 1000);
    expect(w.observe({ info: undefined, pub: "" }, 1100)).toBeUndefined();
    expect(w.live(1100)).toBeUndefined();
    expect(w.observe({ info: L, pub: "garbage" }, 1200)).toBeUndefined();
    expect(parsePub("1 2")).toBeUndefined();
    expect(parsePub("1 2 0")).toBeUndefined();
    expect(parsePub("7 1000 5000")).toEqual({ at: 1000, ttlMs: 5000 });
  });

  it("a first sighting is dated back by the publication's age on Redis's clock: a dead leader's old info is absent at once", () => {
    const w = new LeaderWatch();
    expect(w.observe({ info: L, pub: pub(9, 100_000), redisNowMs: 160_000 }, 1000)).toBeUndefined();
    const young = new LeaderWatch();
    young.observe({ info: L, pub: pub(9, 100_000), redisNowMs: 103_000 }, 1000);
    expect(young.live(2999)).toEqual(L);
    expect(young.live(3000)).toBeUndefined();
  });

  it("a change is never dated before the previous read: Redis's clock stepped back cannot age a fresh publication", () => {
    const w = new LeaderWatch();
    // Stream ids stand still at the stepped-ahead time while TIME (in the mark) moved back 60 s.
    w.observe({ info: L, pub: pub(1, 100_000), redisNowMs: 100_000 }, 1000);
    expect(w.observe({ info: L, pub: pub(2, 41_000), redisNowMs: 100_000 }, 2000)).toEqual(L);
    expect(w.live(1000 + 4999)).toEqual(L); // dated at the previous read (1000), not 60 s earlier
    expect(w.live(6000)).toBeUndefined();
  });
});
