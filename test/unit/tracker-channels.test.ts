/**
 * The membership tracker's two liveness channels (shared/membership.ts) on the manual
 * clock: a member is dead only when neither Redis nor PostgreSQL has shown progress for
 * HEARTBEAT_TIMEOUT, watched without a gap; while a channel cannot be read, nobody new is
 * declared dead.
 */
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../shared/clock.js";
import { MembershipTracker, deadAfterMs, isNewer } from "../../shared/membership.js";
import type { StoredPgHeartbeat } from "../../shared/pg-heartbeats.js";
import type { RawSnapshot } from "../../shared/redis-protocol.js";
import type { Heartbeat } from "../../shared/types.js";

const TIMEOUT = 3_000;
const hb = (id: string, seq: number): Heartbeat => ({
  id, seq, session: `${id}-s`, capacity: 10, draining: false, mode: "orchestrated", useOrchestrator: true, version: 0, held: [], leaving: false, restarting: false,
  worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "2026-01-01T00:00:00Z", host: "h", location: "", software: "t",
});

function harness() {
  const clock = new ManualClock(10_000);
  const seq = { redis: new Map<string, number>(), postgres: new Map<string, number>() };
  const down = { redis: false, postgres: false };
  const ttl = new Map<string, number>();
  const pgDown = new Set<string>();
  const tracker = new MembershipTracker({
    clock,
    heartbeatTimeoutMs: TIMEOUT,
    heartbeatWarningMs: 1_500,
    maxGapMs: 1_500,
    protocol: {
      snapshot: async (): Promise<RawSnapshot> => {
        if (down.redis) throw new Error("Redis unreachable");
        return { incarnation: "i1", leader: undefined, flag: undefined, members: [...seq.redis].map(([id, n]) => ({ id, heartbeat: { ...hb(id, n), ttlMs: ttl.get(id), ...(pgDown.has(id) ? { pgOk: false } : {}) }, pttlMs: 1000 })) };
      },
    },
    pg: {
      readAll: async (): Promise<StoredPgHeartbeat[]> => {
        if (down.postgres) throw new Error("PostgreSQL unreachable");
        return [...seq.postgres].map(([id, n]) => ({ id, heartbeat: { ...hb(id, n), ttlMs: ttl.get(id) } }));
      },
    },
  });
  /** Every member in `beats` writes on the given channels, then the tracker reads. */
  const tick = async (beats: Record<string, ("redis" | "postgres")[]>) => {
    for (const [id, channels] of Object.entries(beats)) for (const c of channels) seq[c].set(id, (seq[c].get(id) ?? 0) + 1);
    await clock.advance(500);
    return tracker.refresh();
  };
  return { tick, down, tracker, setTtl: (id: string, ms: number) => ttl.set(id, ms), reportPgDown: (id: string) => pgDown.add(id) };
}

describe("two liveness channels", () => {
  it("a member heard only through PostgreSQL is alive; silent on both, it dies after HEARTBEAT_TIMEOUT", async () => {
    const h = harness();
    await h.tick({ a: ["redis", "postgres"], b: ["redis", "postgres"] });
    // b is cut from Redis: its PostgreSQL heartbeats keep it alive however long.
    for (let i = 0; i < 20; i++) {
      const snap = await h.tick({ a: ["redis", "postgres"], b: ["postgres"] });
      expect(snap.members.get("b")!.status).not.toBe("dead");
    }
    // Now silent on both: dead once HEARTBEAT_TIMEOUT passed, not before.
    let deadAfter = 0;
    for (let t = 500; t <= 5_000; t += 500) {
      const snap = await h.tick({ a: ["redis", "postgres"] });
      if (snap.members.get("b")!.status === "dead") {
        deadAfter = t;
        break;
      }
    }
    expect(deadAfter).toBeGreaterThanOrEqual(TIMEOUT);
    expect(deadAfter).toBeLessThanOrEqual(TIMEOUT + 500);
  });

  it("while one channel cannot be read, nobody new is declared dead (the member may be heard only there)", async () => {
    const h = harness();
    await h.tick({ a: ["redis", "postgres"], b: ["redis", "postgres"] });
    h.down.postgres = true;
    for (let i = 0; i < 12; i++) {
      const snap = await h.tick({ a: ["redis"] });
      expect(snap.members.get("b")!.status).not.toBe("dead");
      expect(snap.channels).toEqual({ redis: true, postgres: false });
    }
    // Both readable again: b's clock restarted on the blind channel, so it dies a full
    // HEARTBEAT_TIMEOUT after PostgreSQL came back, not at once.
    h.down.postgres = false;
    const back = await h.tick({ a: ["redis", "postgres"] });
    expect(back.members.get("b")!.status).not.toBe("dead");
    let snap = back;
    for (let i = 0; i < 7; i++) snap = await h.tick({ a: ["redis", "postgres"] });
    expect(snap.members.get("b")!.status).toBe("dead");
  });

  it("a dead member stays dead across a blind spell unless it shows progress", async () => {
    const h = harness();
    await h.tick({ a: ["redis", "postgres"], b: ["redis", "postgres"] });
    for (let i = 0; i < 8; i++) await h.tick({ a: ["redis", "postgres"] });
    expect(h.tracker.latest!.members.get("b")!.status).toBe("dead");
    h.down.redis = true;
    expect((await h.tick({ a: ["postgres"] })).members.get("b")!.status).toBe("dead");
    expect((await h.tick({ a: ["postgres"], b: ["postgres"] })).members.get("b")!.status).toBe("alive");
  });

  it("throws only when neither channel can be read", async () => {
    const h = harness();
    h.down.redis = true;
    await expect(h.tick({ a: ["postgres"] })).resolves.toBeDefined();
    h.down.postgres = true;
    await expect(h.tick({})).rejects.toThrow(/Redis unreachable/);
  });
});

describe("deadAfterMs: the larger of the decider's and the member's timeouts", () => {
  it("a member with a longer HEARTBEAT_TIMEOUT or WORKER_LEASE than the decider waits for its own", () => {
    const base = hb("m", 1);
    expect(deadAfterMs(3_000, base)).toBe(3_000);
    expect(deadAfterMs(3_000, { ...base, ttlMs: 10_000 })).toBe(10_000);
    expect(deadAfterMs(3_000, { ...base, ttlMs: 3_000, leaseMs: 6_000 })).toBe(7_000);
    expect(deadAfterMs(8_000, { ...base, ttlMs: 3_000, leaseMs: 1_800 })).toBe(8_000);
  });

  it("the tracker applies it: a member announcing a longer timeout is not dead at the decider's", async () => {
    const h = harness();
    await h.tick({ a: ["redis", "postgres"] });
    // Written with the member's own (longer) timeout, then silence.
    h.setTtl("a", 6_000);
    await h.tick({ a: ["redis", "postgres"] });
    let snap = await h.tick({});
    for (let i = 0; i < 8; i++) snap = await h.tick({});
    expect(snap.members.get("a")!.status).not.toBe("dead");
    for (let i = 0; i < 6; i++) snap = await h.tick({});
    expect(snap.members.get("a")!.status).toBe("dead");
  });
});

describe("a channel down for everyone", () => {
  it("PostgreSQL unreadable here, and the member last said it could not reach it either: judged on Redis alone", async () => {
    const h = harness();
    await h.tick({ a: ["redis", "postgres"], b: ["redis", "postgres"] });
    h.down.postgres = true;
    h.reportPgDown("b");
    await h.tick({ a: ["redis"], b: ["redis"] });
    let snap = await h.tick({ a: ["redis"] });
    for (let i = 0; i < 7; i++) snap = await h.tick({ a: ["redis"] });
    expect(snap.members.get("b")!.status).toBe("dead");
  });
});

describe("a channel down for everyone, seen from the survivors", () => {
  it("a member that died just as PostgreSQL went down (its last heartbeat still said PostgreSQL was fine) is judged on Redis once everyone else reports PostgreSQL down", async () => {
    const h = harness();
    await h.tick({ a: ["redis", "postgres"], b: ["redis", "postgres"], c: ["redis", "postgres"] });
    h.down.postgres = true;
    h.reportPgDown("a");
    h.reportPgDown("c");
    let snap = await h.tick({ a: ["redis"], c: ["redis"] });
    for (let i = 0; i < 8; i++) snap = await h.tick({ a: ["redis"], c: ["redis"] });
    expect(snap.members.get("b")!.status).toBe("dead");
    expect(snap.members.get("a")!.status).toBe("alive");
  });

  it("while another member still reports reaching PostgreSQL, a member silent on Redis is not judged (it may be alive there)", async () => {
    const h = harness();
    await h.tick({ a: ["redis", "postgres"], b: ["redis", "postgres"], c: ["redis", "postgres"] });
    h.down.postgres = true;
    h.reportPgDown("a");
    let snap = await h.tick({ a: ["redis"], c: ["redis"] });
    for (let i = 0; i < 8; i++) snap = await h.tick({ a: ["redis"], c: ["redis"] });
    expect(snap.members.get("b")!.status).not.toBe("dead");
  });
});

describe("isNewer", () => {
  it("orders one process's heartbeats by seq across resync generations, and a restart after them", () => {
    const base = hb("m", 10);
    const gen1 = { ...base, session: "p.1", seq: 20 };
    const gen2 = { ...base, session: "p.2", seq: 30 };
    // Regression: the second resync generation ("p.2") was not newer than the first ("p.1"),
    // so a member frozen twice kept showing its old session and was never restamped.
    expect(isNewer(gen2, gen1)).toBe(true);
    expect(isNewer(gen1, gen2)).toBe(false);
    const restarted = { ...base, session: "q", seq: 1, startedAt: "2026-01-01T00:05:00Z" };
    expect(isNewer(restarted, gen2)).toBe(true);
    expect(isNewer(gen2, restarted)).toBe(false);
  });
});
