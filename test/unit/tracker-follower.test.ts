/**
 * The membership tracker as a follower (shared/membership.ts, `decider` false), on the
 * manual clock: it never reads the membership, watches the leader alone through its own
 * heartbeat replies and the leader's PostgreSQL row, and when it becomes a decider it
 * keeps what it observed of the leader while every other member's clock starts at its
 * first whole read. The leader's PostgreSQL row comes with the follower's own heartbeat
 * write when that write is recent and watched the same members, else by a read of its own.
 */
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../shared/clock.js";
import { MembershipTracker } from "../../shared/membership.js";
import type { StoredPgHeartbeat } from "../../shared/pg-heartbeats.js";
import type { RawSnapshot } from "../../shared/redis-protocol.js";
import type { Heartbeat } from "../../shared/types.js";

const TIMEOUT = 3_000;
const hb = (id: string, seq: number): Heartbeat => ({
  id, seq, session: `${id}-s`, capacity: 10, draining: false, mode: "orchestrated", useOrchestrator: true, version: 0, held: [], leaving: false, restarting: false,
  worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "2026-01-01T00:00:00Z", host: "h", location: "", software: "t",
});

function harness(o: { viaWrite?: boolean } = {}) {
  const clock = new ManualClock(10_000);
  const seq = new Map<string, number>();
  const reads = { snapshot: 0, full: 0, readAll: 0, readSome: [] as string[][] };
  let deciding = false;
  const tracker = new MembershipTracker({
    clock,
    heartbeatTimeoutMs: TIMEOUT,
    heartbeatWarningMs: 1_500,
    maxGapMs: 1_500,
    decider: () => deciding,
    protocol: {
      snapshot: async (full?: boolean): Promise<RawSnapshot> => {
        reads.snapshot++;
        if (full) reads.full++;
        return { incarnation: "i1", leader: { id: "L", epoch: 1, ready: true }, flag: undefined, members: [...seq].map(([id, n]) => ({ id, heartbeat: hb(id, n), mark: `${n}-0`, present: true })) };
      },
    },
    pg: {
      readAll: async (): Promise<StoredPgHeartbeat[]> => {
        reads.readAll++;
        return [...seq].map(([id, n]) => ({ id, heartbeat: hb(id, n) }));
      },
      readSome: async (ids): Promise<StoredPgHeartbeat[]> => {
        reads.readSome.push([...ids]);
        return [...seq].filter(([id]) => ids.includes(id)).map(([id, n]) => ({ id, heartbeat: hb(id, n) }));
      },
    },
  });
  /** Members in `beating` write on both channels; this follower's own beat brings the leader's mark; then it reads. */
  const tick = async (beating: string[], leaderId = "L") => {
    for (const id of beating) seq.set(id, (seq.get(id) ?? 0) + 1);
    await clock.advance(500);
    const n = seq.get(leaderId) ?? 0;
    tracker.observeReply({ incarnation: "i1", leader: { id: leaderId, epoch: 1, ready: true }, flag: undefined, leaderMark: { id: leaderId, mark: `${n}-0` } }, clock.now());
    if (o.viaWrite) {
      // This follower's PostgreSQL heartbeat write reads the members it watches.
      const ids = tracker.pgWatch();
      tracker.observePgReply(ids, [...seq].filter(([id]) => ids.includes(id)).map(([id, k]) => ({ id, heartbeat: hb(id, k) })), clock.now(), clock.now());
    }
    return tracker.refresh();
  };
  /** Ticks with only "a" beating until the leader L is seen dead: the silence it took, in ms (0: not within 5 s). */
  const leaderDeadAfter = async (): Promise<number> => {
    for (let t = 500; t <= 5_000; t += 500) if ((await tick(["a"])).members.get("L")!.status === "dead") return t;
    return 0;
  };
  return { tick, reads, tracker, clock, leaderDeadAfter, decide: (on: boolean) => (deciding = on) };
}

describe("a follower's tracker", () => {
  it("never reads the membership: only the leader's row, and its progress from the heartbeat replies", async () => {
    const h = harness();
    for (let i = 0; i < 10; i++) {
      const snap = await h.tick(["L", "a", "b"]);
      expect([...snap.members.keys()]).toEqual(["L"]);
      expect(snap.members.get("L")!.status).toBe("alive");
      expect(snap.whole).toBe(false);
    }
    expect(h.reads.snapshot).toBe(0);
    expect(h.reads.readAll).toBe(0);
    expect(h.reads.readSome.every((ids) => ids.length === 1 && ids[0] === "L")).toBe(true);
  });

  it("sees the leader dead after HEARTBEAT_TIMEOUT of silence on both channels, not before", async () => {
    const h = harness();
    for (let i = 0; i < 4; i++) await h.tick(["L", "a"]);
    const deadAfter = await h.leaderDeadAfter();
    expect(deadAfter).toBeGreaterThanOrEqual(TIMEOUT);
    expect(deadAfter).toBeLessThanOrEqual(TIMEOUT + 500);
  });

  it("becoming a decider: the old leader keeps its observed silence, every other member starts a new clock", async () => {
    const h = harness();
    for (let i = 0; i < 4; i++) await h.tick(["L", "a", "b"]);
    // The leader dies; b dies at the same moment. 2 s later this follower takes over.
    for (let i = 0; i < 4; i++) await h.tick(["a"]);
    h.decide(true);
    const first = await h.tick(["a"]);
    expect(h.reads.full).toBe(1);
    expect(first.whole).toBe(true);
    expect([...first.members.keys()].sort()).toEqual(["L", "a", "b"]);
    expect(first.members.get("b")!.status).not.toBe("dead");
    // The old leader: dead a HEARTBEAT_TIMEOUT after its last progress this agent saw.
    const second = await h.tick(["a"]);
    expect(second.members.get("L")!.status).toBe("dead");
    // b: only after this decider watched it silent for a full HEARTBEAT_TIMEOUT.
    let snap = second;
    for (let i = 0; i < 4; i++) snap = await h.tick(["a"]);
    expect(snap.members.get("b")!.status).not.toBe("dead");
    for (let i = 0; i < 2; i++) snap = await h.tick(["a"]);
    expect(snap.members.get("b")!.status).toBe("dead");
    expect(snap.members.get("a")!.status).toBe("alive");
    // Later reads are incremental.
    expect(h.reads.full).toBe(1);
  });

  it("without a recent heartbeat reply it is blind on Redis: nobody is declared dead", async () => {
    const h = harness();
    for (let i = 0; i < 4; i++) await h.tick(["L"]);
    // Replies keep coming, the leader is silent on both channels: dead.
    let snap = h.tracker.latest!;
    for (let i = 0; i < 12; i++) {
      await h.tick([]).catch(() => undefined);
      snap = h.tracker.latest!;
    }
    expect(snap.members.get("L")!.status).toBe("dead");
    // A fresh harness in which replies stop instead: Redis unread, the leader not judged.
    const g = harness();
    for (let i = 0; i < 4; i++) await g.tick(["L"]);
    const clock = g.clock;
    let last = g.tracker.latest!;
    for (let i = 0; i < 12; i++) {
      await clock.advance(500);
      last = await g.tracker.refresh();
    }
    expect(last.channels.redis).toBe(false);
    expect(last.members.get("L")!.status).not.toBe("dead");
  });

  it("takes the leader's PostgreSQL row from its own heartbeat write: no read of its own while that answer is recent", async () => {
    const h = harness({ viaWrite: true });
    expect(h.tracker.pgWatch()).toEqual([]); // nobody followed yet, no reply yet
    for (let i = 0; i < 10; i++) expect((await h.tick(["L", "a"])).members.get("L")!.status).toBe("alive");
    expect(h.tracker.pgWatch()).toEqual(["L"]);
    expect(h.reads.readSome.length).toBeLessThanOrEqual(1); // the first read, before any write watched L
    const before = h.reads.readSome.length;
    // The leader falls silent on both channels: dead after HEARTBEAT_TIMEOUT, from the writes' answers alone.
    const deadAfter = await h.leaderDeadAfter();
    expect(deadAfter).toBeGreaterThanOrEqual(TIMEOUT);
    expect(deadAfter).toBeLessThanOrEqual(TIMEOUT + 500);
    expect(h.reads.readSome.length).toBe(before);
  });

  it("reads the leader's row itself when its last write's answer is older than a gap, or watched another leader", async () => {
    const h = harness({ viaWrite: true });
    for (let i = 0; i < 4; i++) await h.tick(["L"]);
    const clock = h.clock;
    const before = h.reads.readSome.length;
    await clock.advance(2_000); // no heartbeat write for longer than maxGapMs
    await h.tracker.refresh();
    expect(h.reads.readSome.length).toBe(before + 1);
    // A new leader M, named by the Redis reply after the write went out watching L alone:
    // the tracker reads L and M itself once, then follows both from its writes.
    await h.tick(["L"]);
    const n = h.reads.readSome.length;
    h.tracker.observeReply({ incarnation: "i1", leader: { id: "M", epoch: 2, ready: true }, flag: undefined, leaderMark: { id: "M", mark: "1-0" } }, clock.now());
    await h.tracker.refresh();
    expect(h.reads.readSome.length).toBe(n + 1);
    expect(h.reads.readSome.at(-1)!.sort()).toEqual(["L", "M"]);
    expect(h.tracker.pgWatch().sort()).toEqual(["L", "M"]);
    const after = h.reads.readSome.length;
    await h.tick(["M"], "M");
    await h.tick(["M"], "M");
    expect(h.reads.readSome.length).toBe(after);
  });

  it("does not take a slow write's answer that was sent before a read of its own: it would show an older row as progress", async () => {
    const h = harness({ viaWrite: true });
    for (let i = 0; i < 4; i++) await h.tick(["L"]);
    const clock = h.clock;
    // No write answers for longer than a gap: the tracker reads L's row itself (seq 4).
    await clock.advance(1_800);
    const sentEarlier = clock.now() - 1_000;
    await h.tracker.refresh();
    const reads = h.reads.readSome.length;
    // Then a write sent before that read answers with L's older row (seq 3).
    h.tracker.observePgReply(["L"], [{ id: "L", heartbeat: hb("L", 3) }], clock.now(), sentEarlier);
    await clock.advance(100);
    await h.tracker.refresh();
    expect(h.reads.readSome.length).toBe(reads + 1); // read again, not the stale answer
  });

  it("watches nobody on PostgreSQL through its writes while it decides", async () => {
    const h = harness({ viaWrite: true });
    await h.tick(["L"]);
    h.decide(true);
    expect(h.tracker.pgWatch()).toEqual([]);
  });
});
