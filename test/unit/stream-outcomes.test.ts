/**
 * The worker's outcomes as its agent records them (agent/stream-outcomes.ts), on the
 * manual clock: what is written when, and when a worker is degraded (most streams
 * failing together, or a rate-limit pause) and stops being.
 */
import { describe, expect, it } from "vitest";
import { StreamOutcomes } from "../../agent/stream-outcomes.js";
import { ManualClock } from "../../shared/clock.js";
import { loadConfig } from "../../shared/config.js";
import { silentLogger } from "../../shared/logger.js";

const t = loadConfig({}).timings; // STREAM_FAILOVER_AFTER 120 s: degrade after 30 s, hold 600 s

function setup(held = ["1", "2", "3", "4", "5"]) {
  const clock = new ManualClock();
  const writes: { ok: string[]; failed: string[] }[] = [];
  let clears = 0;
  const store = {
    recordOutcomes: async (_id: string, ok: readonly string[], failed: readonly { id: string }[]) => void writes.push({ ok: [...ok], failed: failed.map((f) => f.id) }),
    clearEpisodes: async () => void clears++,
  };
  const o = new StreamOutcomes({ id: "a", clock, logger: silentLogger(), store, timings: t, held: () => held });
  return { clock, o, writes, clears: () => clears };
}
const fail = (...ids: string[]) => ids.map((id) => ({ id, status: "failed", error: "403" }));
const ok = (...ids: string[]) => ids.map((id) => ({ id, status: "ok" }));

describe("recording outcomes", () => {
  it("writes a change at once and an unchanged outcome at most every outcomeRewriteMs; ignores processing and streams not held", async () => {
    const { clock, o, writes } = setup();
    o.report([...ok("1"), ...fail("2"), { id: "3", status: "processing" }, ...ok("99")]);
    await o.flush();
    expect(writes).toEqual([{ ok: ["1"], failed: ["2"] }]);
    await clock.advance(5_000);
    o.report([...ok("1"), ...fail("2")]);
    await o.flush();
    expect(writes.length).toBe(1);
    await clock.advance(t.outcomeRewriteMs);
    o.report([...ok("1"), ...fail("2")]);
    await o.flush();
    expect(writes.at(-1)).toEqual({ ok: ["1"], failed: ["2"] });
    o.report([{ id: "2", status: "completed" }]); // the older API's success
    await o.flush();
    expect(writes.at(-1)).toEqual({ ok: ["2"], failed: [] });
  });

  it("keeps a failed write for the next attempt", async () => {
    const clock = new ManualClock();
    let down = true;
    const written: string[][] = [];
    const store = { recordOutcomes: async (_: string, okIds: readonly string[]) => { if (down) throw new Error("db down"); written.push([...okIds]); }, clearEpisodes: async () => {} };
    const o = new StreamOutcomes({ id: "a", clock, logger: silentLogger(), store, timings: t, held: () => ["1"] });
    o.report(ok("1"));
    await o.flush();
    down = false;
    await o.flush();
    expect(written).toEqual([["1"]]);
  });
});

describe("a store that does not answer (a blackholed PostgreSQL)", () => {
  it("gets one write at a time: reports meanwhile add no write, and one more pass carries the newest outcomes once it answers", async () => {
    const clock = new ManualClock();
    let release: () => void = () => {};
    const calls: string[][] = [];
    let inFlight = 0;
    let most = 0;
    const store = {
      recordOutcomes: async (_: string, okIds: readonly string[], failed: readonly { id: string }[]) => {
        calls.push([...okIds, ...failed.map((f) => `!${f.id}`)]);
        most = Math.max(most, ++inFlight);
        if (calls.length === 1) await new Promise<void>((r) => (release = r));
        inFlight--;
      },
      clearEpisodes: async () => {},
    };
    const o = new StreamOutcomes({ id: "a", clock, logger: silentLogger(), store, timings: t, held: () => ["1", "2", "3"] });
    o.report(ok("1"));
    for (let i = 0; i < 10; i++) o.report([...fail("2"), ...ok("3")]);
    await new Promise((r) => setTimeout(r, 10));
    expect(calls).toEqual([["1"]]);
    release();
    await o.flush();
    expect(calls).toEqual([["1"], ["3", "!2"]]);
    expect(most).toBe(1);
  });
});

describe("a degraded worker", () => {
  it("is degraded once ≥ 80 % of ≥ 3 streams have failed together for degradeAfterMs; its episodes are closed and failures no longer written", async () => {
    const { clock, o, writes, clears } = setup();
    o.report(fail("1", "2", "3", "4"));
    await o.flush();
    expect(o.degraded()).toBeUndefined();
    await clock.advance(t.degradeAfterMs - 1);
    o.report(fail("1", "2", "3", "4"));
    expect(o.degraded()).toBeUndefined();
    await clock.advance(1);
    o.report(fail("1", "2", "3", "4"));
    await o.flush();
    expect(o.degraded()).toEqual({ reason: "failures" });
    expect(clears()).toBe(1);
    const before = writes.length;
    await clock.advance(t.outcomeRewriteMs);
    o.report(fail("1", "2", "3", "4", "5"));
    await o.flush();
    expect(writes.slice(before).every((w) => w.failed.length === 0)).toBe(true);
  });

  it("is not degraded when fewer than 80 % fail, or fewer than 3 streams report", async () => {
    const { clock, o } = setup();
    o.report([...fail("1", "2", "3"), ...ok("4", "5")]);
    await clock.advance(t.degradeAfterMs * 2);
    o.report([...fail("1", "2", "3"), ...ok("4", "5")]);
    expect(o.degraded()).toBeUndefined();
    const two = setup(["1", "2"]);
    two.o.report(fail("1", "2"));
    await two.clock.advance(t.degradeAfterMs * 2);
    two.o.report(fail("1", "2"));
    expect(two.o.degraded()).toBeUndefined();
  });

  it("ends with the first success, or after degradedHoldMs", async () => {
    const { clock, o } = setup();
    o.report(fail("1", "2", "3"));
    await clock.advance(t.degradeAfterMs);
    o.report(fail("1", "2", "3"));
    expect(o.degraded()).toEqual({ reason: "failures" });
    o.report(ok("2"));
    expect(o.degraded()).toBeUndefined();
    o.report(fail("1", "2", "3"));
    await clock.advance(t.degradeAfterMs);
    o.report(fail("1", "2", "3"));
    expect(o.degraded()).toEqual({ reason: "failures" });
    await clock.advance(t.degradedHoldMs);
    expect(o.degraded()).toBeUndefined();
    // Fresh evidence is needed to degrade it again.
    o.report(fail("1"));
    expect(o.degraded()).toBeUndefined();
  });

  it("is rate-limited while the pause it reported lasts (capped at two hours); its failures are not charged", async () => {
    const { clock, o, writes, clears } = setup();
    const until = new Date(clock.wall() + 120_000).toISOString();
    o.report(fail("1"), until);
    await o.flush();
    expect(o.degraded()).toEqual({ reason: "rate-limited", until });
    expect(clears()).toBe(1);
    expect(writes.every((w) => w.failed.length === 0)).toBe(true);
    await clock.advance(120_000);
    expect(o.degraded()).toBeUndefined();
    o.report([], new Date(clock.wall() + 30 * 86_400_000).toISOString());
    expect(Date.parse(o.degraded()!.until!)).toBe(clock.wall() + 2 * 3_600_000);
    o.report([], null);
    expect(o.degraded()).toBeUndefined();
  });
});
