/**
 * The agent's pure decisions: which mode (agent/mode.ts) and what to offer
 * (agent/reconcile.ts).
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { resolveMode, type ModeInput } from "../../agent/mode.js";
import { hashedShare, reconcile } from "../../agent/reconcile.js";
import type { MemberView, Snapshot } from "../../shared/membership.js";
import type { Heartbeat, Stream } from "../../shared/types.js";

const base: ModeInput = {
  now: 100_000,
  current: "orchestrated",
  useOrchestrator: true,
  flag: { mode: "orchestrated", version: 1 },
  leader: { id: "l", epoch: 3, ready: true },
  lastLeaderSeenAt: 99_000,
  fallbackGraceMs: 10_000,
  own: { epoch: 3, version: 7 },
  versionAtHashed: 0,
  coordinationOk: true,
};

describe("resolveMode", () => {
  it("follows a ready leader that wrote this member's rows", () => {
    expect(resolveMode(base).mode).toBe("orchestrated");
  });
  it("hashes when USE_ORCHESTRATOR=false or the flag says so", () => {
    expect(resolveMode({ ...base, useOrchestrator: false }).mode).toBe("hashed");
    expect(resolveMode({ ...base, flag: { mode: "hashed", version: 2 } }).mode).toBe("hashed");
  });
  it("falls back to hashing only after the grace period without a leader", () => {
    const noLeader = { ...base, leader: undefined };
    expect(resolveMode({ ...noLeader, lastLeaderSeenAt: base.now - 9_999 }).mode).toBe("orchestrated");
    expect(resolveMode({ ...noLeader, lastLeaderSeenAt: base.now - 10_000 }).mode).toBe("hashed");
    expect(resolveMode({ ...noLeader, leader: { id: "l", epoch: 4, ready: false }, lastLeaderSeenAt: 0 }).mode).toBe("hashed");
  });
  it("never switches while it cannot see the cluster", () => {
    expect(resolveMode({ ...base, leader: undefined, lastLeaderSeenAt: 0, coordinationOk: false }).mode).toBe("orchestrated");
    expect(resolveMode({ ...base, current: "hashed", coordinationOk: false }).mode).toBe("hashed");
  });
  it("returns from hashing only after the leader wrote this member's rows anew", () => {
    const back = { ...base, current: "hashed" as const, versionAtHashed: 7 };
    expect(resolveMode(back).mode).toBe("hashed");
    expect(resolveMode({ ...back, own: { epoch: 3, version: 8 } }).mode).toBe("orchestrated");
    expect(resolveMode({ ...back, own: { epoch: 2, version: 9 } }).mode).toBe("hashed");
  });
});

const stream = (id: string): Stream => ({ id, url: `u${id}`, name: id, metadata: {} });
const POLICY = { imbalanceThreshold: 0.15, maxStreamDifference: 3 };

function member(id: string, held: string[], status: MemberView["status"] = "alive", capacity = 10): MemberView {
  const hb: Heartbeat = {
    id, seq: 1, session: "s", capacity, draining: false, mode: "hashed", useOrchestrator: true, version: 0, held, leaving: false, restarting: false,
    worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "", host: "", location: "", software: "",
  };
  return { id, hb, present: true, status, silentMs: 0, firstSeenAt: 0 };
}

function snapshot(members: MemberView[], at: number, grewAt: number): Snapshot {
  return { at, members: new Map(members.map((m) => [m.id, m])), leader: undefined, flag: undefined, incarnation: "i", viewVersion: 1, viewGrewAt: grewAt, channels: { redis: true, postgres: true } };
}

describe("reconcile", () => {
  it("property: never offers a new stream that another live member holds; keeps what it already offers", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 40 }).map(String), { maxLength: 30 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 40 }).map(String), { maxLength: 10 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 40 }).map(String), { maxLength: 10 }),
        fc.constantFrom<"orchestrated" | "hashed">("orchestrated", "hashed"),
        fc.constantFrom<MemberView["status"]>("alive", "warning", "dead", "left"),
        fc.integer({ min: 0, max: 5000 }),
        (ids, heldByB, listed, mode, bStatus, sinceGrew) => {
          const catalog = ids.map(stream);
          const now = 100_000;
          const snap = snapshot([member("a", listed), member("b", heldByB, bStatus)], now, now - sinceGrew);
          const r = reconcile({ me: "a", now, mode, listed: listed.map(stream), rows: mode === "orchestrated" ? catalog : undefined, catalog, snapshot: snap, hashSettleMs: 2000, maxViewAgeMs: 3000, hashPolicy: POLICY });
          const bLive = bStatus === "alive" || bStatus === "warning";
          for (const s of r.streams) {
            if (!listed.includes(s.id)) {
              if (bLive) expect(heldByB).not.toContain(s.id);
              if (mode === "hashed") expect(sinceGrew).toBeGreaterThanOrEqual(2000);
            }
          }
          // Releases apply at once: nothing offered that is not wanted.
          const wanted = new Set((mode === "orchestrated" ? catalog : r.streams).map((s) => s.id));
          for (const s of r.streams) expect(wanted.has(s.id)).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("takes nothing new from a stale view", () => {
    const now = 100_000;
    const snap = snapshot([member("a", [])], now - 10_000, 0);
    const r = reconcile({ me: "a", now, mode: "orchestrated", listed: [], rows: [stream("1")], catalog: undefined, snapshot: snap, hashSettleMs: 0, maxViewAgeMs: 3000, hashPolicy: POLICY });
    expect(r.streams).toEqual([]);
    expect(r.blocked).toEqual(["1"]);
  });
});

describe("hashed mode and REQUIRE_WORKER", () => {
  it("a member whose worker is down gets no hashed share when the view requires a worker", () => {
    const catalog = Array.from({ length: 60 }, (_, i) => stream(String(i + 1)));
    const dead = member("b", []);
    const down = { ...dead, hb: { ...dead.hb!, worker: { ...dead.hb!.worker, ok: false } } };
    const snap = (requireWorker: boolean): Snapshot => ({ ...snapshot([member("a", [], "alive", 60), down], 100_000, 0), requireWorker });
    expect(hashedShare("b", catalog, snap(false), POLICY).length).toBeGreaterThan(0);
    expect(hashedShare("b", catalog, snap(true), POLICY)).toEqual([]);
    expect(hashedShare("a", catalog, snap(true), POLICY)).toHaveLength(60);
  });
});
