/**
 * The offer decision (agent/offer.ts), step by step on the manual clock: resync, row
 * trust, releases, leaving and the fallback to hashing.
 */
import { describe, expect, it } from "vitest";
import { beginResync, decideOffer, initialOfferState, sessionOf, type OfferInput, type OfferState } from "../../agent/offer.js";
import { ManualClock } from "../../shared/clock.js";
import type { MemberView, Snapshot } from "../../shared/membership.js";
import type { OwnAssignment } from "../../shared/store.js";
import type { Heartbeat, Stream } from "../../shared/types.js";

const SESSION = "p1";
const stream = (id: string): Stream => ({ id, url: `u${id}`, name: id, metadata: {} });

function member(id: string, held: string[] = []): MemberView {
  const hb: Heartbeat = {
    id, seq: 1, session: "s", capacity: 10, draining: false, mode: "orchestrated", useOrchestrator: true, version: 0, held, leaving: false, restarting: false,
    worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "", host: "", location: "", software: "",
  };
  return { id, hb, present: true, status: "alive", silentMs: 0, firstSeenAt: 0 };
}

const snapshot = (at: number, members = [member("me"), member("other")]): Snapshot => ({
  at, members: new Map(members.map((m) => [m.id, m])), leader: undefined, flag: undefined, incarnation: "i", viewVersion: 1, viewGrewAt: 0, channels: { redis: true, postgres: true },
});

function own(ids: string[], o: Partial<OwnAssignment> = {}): OwnAssignment {
  return { registered: true, version: 5, epoch: 2, draining: false, stampedSession: SESSION, declaredCapacity: null, active: ids.map(stream), revoking: [], mode: "orchestrated", modeVersion: 1, ...o };
}

/** One agent's decisions over time: feed reads, get offers. */
function harness() {
  const clock = new ManualClock(10_000);
  let state: OfferState = initialOfferState(clock.now());
  let listed: readonly Stream[] = [];
  const input = (o: Partial<OfferInput>): OfferInput => ({
    now: clock.now(), me: "me", processSession: SESSION, useOrchestrator: true, fallbackGraceMs: 5_000, hashSettleMs: 2_000, maxViewAgeMs: 3_000, hashPolicy: { imbalanceThreshold: 0.15, maxStreamDifference: 3 },
    heartbeatOk: true, snapshot: snapshot(clock.now()), own: own(["1", "2"]), ownLoadedAt: clock.now() - 1, flag: { mode: "orchestrated", version: 1 },
    leader: { id: "other", epoch: 2, ready: true }, leaving: false, listed, catalog: ["1", "2", "3", "4"].map(stream), legacy: undefined, released: new Set(), ...o,
  });
  return {
    clock,
    get state() { return state; },
    step(o: Partial<OfferInput> = {}) {
      const d = decideOffer(state, input(o));
      state = d.state;
      if (d.streams) listed = d.streams;
      return { ...d, ids: listed.map((s) => s.id) };
    },
    resync() { state = beginResync(state, clock.now()); listed = []; },
  };
}

describe("decideOffer", () => {
  it("serves rows only once a leader stamped them for this session", () => {
    const h = harness();
    expect(h.step({ own: own(["1", "2"], { stampedSession: "older-process" }) }).ids).toEqual([]);
    expect(h.step().ids).toEqual(["1", "2"]);
  });

  it("after a resync: nothing until rows AND membership were read after it began, then a new session", async () => {
    const h = harness();
    expect(h.step().ids).toEqual(["1", "2"]);
    await h.clock.advance(1_000);
    h.resync();
    const began = h.clock.now();
    expect(h.state.resyncs).toBe(1);
    expect(sessionOf(SESSION, h.state)).toBe(`${SESSION}.1`);
    await h.clock.advance(100);
    // Rows read after, membership not yet: still withdrawn.
    expect(h.step({ ownLoadedAt: began + 50, snapshot: snapshot(began - 10) }).streams).toBeUndefined();
    // Both read after: resynced, but the rows were stamped for the old session.
    const d = h.step({ ownLoadedAt: began + 50, snapshot: snapshot(began + 60) });
    expect(d.resynced).toBe(true);
    expect(d.ids).toEqual([]);
    // The leader restamps the rows for the new session: served again.
    expect(h.step({ own: own(["1", "2"], { stampedSession: `${SESSION}.1` }), ownLoadedAt: began + 50 }).ids).toEqual(["1", "2"]);
  });

  it("a released stream stays out until the leader acted on it, revoking included", () => {
    const h = harness();
    h.step();
    const released = new Set(["2"]);
    let d = h.step({ released });
    expect(d.ids).toEqual(["1"]);
    expect(d.forgetReleased).toEqual([]);
    d = h.step({ released, own: own(["1"], { revoking: ["2"] }) });
    expect(d.forgetReleased).toEqual([]);
    d = h.step({ released, own: own(["1"]) });
    expect(d.forgetReleased).toEqual(["2"]);
  });

  it("never offers a row another live member still holds", () => {
    const h = harness();
    const d = h.step({ snapshot: snapshot(h.clock.now(), [member("me"), member("other", ["2"])]) });
    expect(d.ids).toEqual(["1"]);
    expect(d.blocked).toBe(1);
  });

  it("leaving: keeps only what is still in its rows, takes nothing", () => {
    const h = harness();
    h.step();
    expect(h.step({ leaving: true, own: own(["2", "3"]) }).ids).toEqual(["2"]);
  });

  it("falls back to hashing after the grace period without a leader, never while blind", async () => {
    const h = harness();
    h.step();
    await h.clock.advance(4_000);
    expect(h.step({ leader: undefined }).state.mode).toBe("orchestrated");
    await h.clock.advance(1_000);
    // Heartbeats failing: it cannot tell "no leader" from "cannot see it", and the grace restarts.
    expect(h.step({ leader: undefined, heartbeatOk: false }).state.mode).toBe("orchestrated");
    await h.clock.advance(4_999);
    expect(h.step({ leader: undefined }).state.mode).toBe("orchestrated");
    await h.clock.advance(1);
    const d = h.step({ leader: undefined });
    expect(d.modeChange).toMatchObject({ from: "orchestrated", to: "hashed" });
    // Back to orchestration only with rows written after this version (agent/mode.ts).
    expect(d.state.rowsGate).toBe(5);
    expect(h.step({ leader: { id: "other", epoch: 2, ready: true } }).state.mode).toBe("hashed");
    expect(h.step({ leader: { id: "other", epoch: 2, ready: true }, own: own(["1"], { version: 6 }) }).state.mode).toBe("orchestrated");
  });
  it("watches the hashed view while there is no ready leader, so at the fallback it takes the lost leader's streams at once", async () => {
    const h = harness();
    const noLeader = (at: number) => snapshot(at, [member("me", ["1", "2"]), { ...member("other", ["3", "4"]), status: "dead" }]);
    expect(h.step().ids).toEqual(["1", "2"]);
    await h.clock.advance(1_000);
    // The leader ("other") is gone: orchestrated for the grace period, watching.
    expect(h.step({ leader: undefined, snapshot: noLeader(h.clock.now()) }).state.mode).toBe("orchestrated");
    expect(h.state.hashedView).toBeDefined();
    await h.clock.advance(5_000);
    const d = h.step({ leader: undefined, snapshot: noLeader(h.clock.now()) });
    expect(d.modeChange).toMatchObject({ to: "hashed" });
    expect(d.ids.sort()).toEqual(["1", "2", "3", "4"]);
  });

  it("keeps no hashed view while it follows a ready leader", () => {
    const h = harness();
    h.step();
    expect(h.state.hashedView).toBeUndefined();
  });
});
