/**
 * The joined cluster view behind /status, /instances and /streams/status (shared/status.ts,
 * pure): laws over random clusters, and the instance life-cycle mapping case by case.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CatalogSnapshot } from "../../shared/catalog.js";
import type { MemberStatus, MemberView, Snapshot } from "../../shared/membership.js";
import { instanceState } from "../../shared/member-state.js";
import { clusterView } from "../../shared/status.js";
import type { InstanceRecord, SharedRows } from "../../shared/status-rows.js";
import { INSTANCE_STATES } from "../../shared/types.js";
import type { Heartbeat } from "../../shared/types.js";

function hb(id: string, o: Partial<Heartbeat> = {}): Heartbeat {
  return {
    id,
    seq: 1,
    session: "s",
    capacity: 10,
    draining: false,
    mode: "orchestrated",
    useOrchestrator: true,
    version: 1,
    held: [],
    leaving: false,
    restarting: false,
    worker: { ok: true, lastSeenMsAgo: 100, processed: 5, errors: 1, kind: "v1" },
    startedAt: "2026-01-01T00:00:00.000Z",
    host: "h",
    location: "",
    software: "0.1.0",
    ...o,
  };
}

function row(id: string, o: Partial<InstanceRecord> = {}): InstanceRecord {
  return { id, registeredAt: "2026-01-01T00:00:00.000Z", lastSeen: null, capacity: 10, draining: false, status: "active", version: 1, software: "0.1.0", location: "", host: "h", processed: 0, errors: 0, removedAt: null, ...o };
}

const member = (id: string, status: MemberStatus, h: Heartbeat | undefined): MemberView => ({ id, hb: h, present: status !== "dead", status, silentMs: 200, firstSeenAt: 0 });

describe("instanceState", () => {
  it("maps heartbeats and rows onto the documented life cycle", () => {
    expect(instanceState(member("a", "alive", hb("a")), row("a"))).toBe("active");
    expect(instanceState(member("a", "warning", hb("a")), row("a"))).toBe("warning");
    expect(instanceState(member("a", "dead", hb("a")), row("a"))).toBe("inactive");
    expect(instanceState(member("a", "left", hb("a", { leaving: true })), row("a"))).toBe("removed");
    expect(instanceState(member("a", "alive", hb("a", { draining: true })), row("a"))).toBe("draining");
    expect(instanceState(member("a", "alive", hb("a")), row("a", { draining: true }))).toBe("draining");
    expect(instanceState(member("a", "alive", hb("a")), row("a", { status: "inactive" }))).toBe("recovering");
    expect(instanceState(member("a", "alive", hb("a")), row("a", { status: "recovering" }))).toBe("recovering");
    expect(instanceState(undefined, row("a"))).toBe("inactive");
    expect(instanceState(undefined, row("a", { status: "removed" }))).toBe("removed");
    expect(instanceState(undefined, row("a", { removedAt: "2026-01-01T00:00:00.000Z" }))).toBe("removed");
  });
});

const arbCluster = fc
  .record({
    streams: fc.integer({ min: 0, max: 40 }),
    inactive: fc.integer({ min: 0, max: 3 }),
    instances: fc.array(
      fc.record({
        row: fc.boolean(),
        member: fc.constantFrom<MemberStatus | "none">("alive", "warning", "dead", "left", "none"),
        capacity: fc.integer({ min: 0, max: 30 }),
        draining: fc.boolean(),
        hashed: fc.boolean(),
        rowStatus: fc.constantFrom("active", "inactive", "removed", "recovering", "registered"),
        held: fc.array(fc.integer({ min: 1, max: 45 }), { maxLength: 8 }),
      }),
      { maxLength: 6 },
    ),
    rows: fc.array(fc.record({ stream: fc.integer({ min: 1, max: 45 }), owner: fc.integer({ min: 0, max: 7 }), revoking: fc.boolean() }), { maxLength: 50 }),
    leader: fc.integer({ min: -1, max: 6 }),
  })
  .map((g) => {
    const ids = g.instances.map((_, i) => `n${i}`);
    const catalog: CatalogSnapshot = {
      streams: Array.from({ length: g.streams }, (_, i) => ({ id: String(i + 1), url: `http://x.invalid/${i + 1}`, name: `s${i + 1}`, metadata: {} })),
      inactive: g.inactive,
      skipped: [],
    };
    const members = new Map<string, MemberView>();
    const instances: InstanceRecord[] = [];
    g.instances.forEach((x, i) => {
      const id = ids[i]!;
      if (x.row || x.member === "none") instances.push(row(id, { capacity: x.capacity, status: x.rowStatus, draining: x.draining && x.row }));
      if (x.member !== "none") {
        members.set(id, member(id, x.member, hb(id, { capacity: x.capacity, draining: x.draining, mode: x.hashed ? "hashed" : "orchestrated", held: [...new Set(x.held.map(String))] })));
      }
    });
    const seen = new Set<string>();
    const assignments = g.rows
      .filter((r) => !seen.has(String(r.stream)) && seen.add(String(r.stream)))
      .map((r) => ({ stream: String(r.stream), owner: `n${r.owner}`, state: r.revoking ? ("revoking" as const) : ("active" as const), next: null, reason: "catalog" }));
    const rows: SharedRows = {
      leadership: { epoch: 3, leaderId: "n0", electedAt: "2026-01-01T00:00:00.000Z" },
      flag: { mode: "orchestrated", version: 1, updatedAt: null, updatedBy: null },
      instances,
      assignments,
      events: [],
      lastMoves: undefined,
    };
    const snapshot: Snapshot = { at: 0, members, leader: undefined, flag: undefined, incarnation: "i", viewVersion: 1, viewGrewAt: 0, channels: { redis: true, postgres: true } };
    const leader = g.leader >= 0 ? { id: `n${g.leader}`, epoch: 3, ready: true } : undefined;
    return { rows, snapshot, catalog, leader };
  });

describe("clusterView (property)", () => {
  it("accounts for every active stream exactly once and for every instance once", () => {
    fc.assert(
      fc.property(arbCluster, ({ rows, snapshot, catalog, leader }) => {
        const v = clusterView({ rows, snapshot, catalog, leader, nowWall: Date.parse("2026-01-01T00:00:10.000Z") });
        const active = new Set(catalog.streams.map((s) => s.id));
        // Streams: assigned + unassigned = active; the unassigned have no row and no live holder.
        expect(v.streams.assigned + v.streams.unassigned).toBe(v.streams.active);
        expect(v.streams.total).toBe(catalog.streams.length + catalog.inactive);
        const withRow = new Set(rows.assignments.map((a) => a.stream));
        const heldLive = new Set([...snapshot.members.values()].filter((m) => m.hb && (m.status === "alive" || m.status === "warning")).flatMap((m) => m.hb!.held));
        for (const s of v.unassigned) {
          expect(active.has(s)).toBe(true);
          expect(withRow.has(s) || heldLive.has(s)).toBe(false);
        }
        expect(new Set(v.unassigned).size).toBe(v.unassigned.length);
        // Instances: sorted, unique, every row and every heartbeat present, counts add up.
        const iids = v.instances.map((i) => i.instance_id);
        expect(iids).toEqual([...new Set(iids)].sort());
        for (const r of rows.instances) expect(iids).toContain(r.id);
        for (const m of snapshot.members.values()) expect(iids).toContain(m.id);
        expect(INSTANCE_STATES.reduce((s, k) => s + v.counts[k], 0)).toBe(v.counts.total);
        expect(v.counts.total).toBe(v.instances.length);
        expect(v.instances.filter((i) => i.is_leader).length).toBeLessThanOrEqual(1);
        for (const i of v.instances) {
          expect(i.current_streams).toBe(v.owned.get(i.instance_id)?.length ?? 0);
          expect(i.load_percentage).toBe(i.max_streams > 0 ? Math.round((1000 * i.current_streams) / i.max_streams) / 10 : 0);
          expect(i.revoking_streams).toBeLessThanOrEqual(i.current_streams);
        }
        // Pure: the same input gives the same view.
        const again = clusterView({ rows, snapshot, catalog, leader, nowWall: Date.parse("2026-01-01T00:00:10.000Z") });
        expect(JSON.stringify({ ...again, owned: [...again.owned] })).toBe(JSON.stringify({ ...v, owned: [...v.owned] }));
      }),
      { numRuns: 300 },
    );
  });

  it("reports the last decided moves by reason, the dominant reason first", () => {
    const rows: SharedRows = {
      leadership: { epoch: 2, leaderId: "a", electedAt: null },
      flag: { mode: "orchestrated", version: 1, updatedAt: null, updatedBy: null },
      instances: [],
      assignments: [],
      events: [],
      lastMoves: { at: "2026-01-01T00:00:00.000Z", epoch: 2, byReason: { join: 1, drain: 4 } },
    };
    const v = clusterView({ rows, snapshot: undefined, catalog: undefined, leader: undefined, nowWall: 0 });
    expect(v.lastRebalance).toEqual({ at: "2026-01-01T00:00:00.000Z", reason: "drain", moved: 5, by_reason: { join: 1, drain: 4 }, epoch: 2 });
    expect(v.leader).toBeNull();
    expect(v.epoch).toBe(2);
  });
});
