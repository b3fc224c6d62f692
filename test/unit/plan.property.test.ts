/**
 * The leader's plan (shared/placement/plan.ts) keeps the handoff rules for ANY cluster state:
 * - a stream is never given to a member while another live member reports holding it,
 *   nor while a legacy member owns it;
 * - a live owner's stream never changes owner in one step: it is revoked first;
 * - a revocation completes only once the owner no longer holds the stream at a version
 *   ≥ the revocation's (or the owner is dead / left holding nothing);
 * - no member is given more streams than its capacity.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { MemberStatus, MemberView } from "../../shared/membership.js";
import type { Heartbeat, Stream } from "../../shared/types.js";
import { plan, type InstanceRow, type Row } from "../../shared/placement/plan.js";

const IDS = ["a", "b", "c", "d"];

function hb(id: string, o: { held: string[]; capacity: number; version: number; draining: boolean; leaving: boolean; hashed: boolean }): Heartbeat {
  return {
    id,
    seq: 1,
    session: "s",
    capacity: o.capacity,
    draining: o.draining,
    mode: "orchestrated",
    useOrchestrator: !o.hashed,
    version: o.version,
    held: o.held,
    leaving: o.leaving,
    restarting: false,
    worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" },
    startedAt: "",
    host: "",
    location: "",
    software: "",
  };
}

const streamIds = fc.uniqueArray(fc.integer({ min: 1, max: 30 }).map(String), { minLength: 0, maxLength: 25 });

const arbState = fc
  .record({
    catalog: streamIds,
    members: fc.array(
      fc.record({
        status: fc.constantFrom<MemberStatus>("alive", "alive", "warning", "dead", "left"),
        capacity: fc.integer({ min: 0, max: 12 }),
        version: fc.integer({ min: 0, max: 5 }),
        draining: fc.boolean(),
        leaving: fc.boolean(),
        hashed: fc.boolean(),
        held: fc.uniqueArray(fc.integer({ min: 1, max: 30 }).map(String), { maxLength: 6 }),
      }),
      { minLength: 4, maxLength: 4 },
    ),
    rows: fc.array(
      fc.record({
        stream: fc.integer({ min: 1, max: 30 }).map(String),
        owner: fc.constantFrom(...IDS, "gone"),
        revoking: fc.boolean(),
        next: fc.option(fc.constantFrom(...IDS), { nil: null }),
        revokeVersion: fc.integer({ min: 0, max: 6 }),
      }),
      { maxLength: 20 },
    ),
    legacy: fc.uniqueArray(fc.integer({ min: 1, max: 30 }).map(String), { maxLength: 4 }),
    rebalanceAllowed: fc.boolean(),
    force: fc.boolean(),
  })
  .map((st) => {
    const members = new Map<string, MemberView>();
    st.members.forEach((m, i) => {
      const id = IDS[i]!;
      const held = m.status === "left" ? [] : m.held;
      members.set(id, { id, hb: hb(id, { ...m, held, leaving: m.status === "left" ? true : m.leaving }), present: true, status: m.status, silentMs: 0, firstSeenAt: 0 });
    });
    const rows = new Map<string, Row>();
    for (const r of st.rows) {
      rows.set(r.stream, { stream: r.stream, owner: r.owner, state: r.revoking ? "revoking" : "active", next: r.revoking ? r.next : null, revokeVersion: r.revoking ? r.revokeVersion : null, reason: "catalog", url: `u${r.stream}`, name: r.stream, metadata: {} });
    }
    const catalog: Stream[] = st.catalog.map((id) => ({ id, url: `u${id}`, name: id, metadata: {} }));
    const legacy = new Map(st.legacy.filter((s) => st.catalog.includes(s)).map((s) => [s, "legacy-1"]));
    return { members, rows, catalog, legacy, rebalanceAllowed: st.rebalanceAllowed, force: st.force };
  });

const isLive = (m: MemberView | undefined) => !!m && (m.status === "alive" || m.status === "warning");

describe("plan", () => {
  it("keeps the handoff rules for any cluster state", () => {
    fc.assert(
      fc.property(arbState, (st) => {
        const instances = new Map<string, InstanceRow>(IDS.map((id) => [id, { id, draining: false, version: 1, epoch: 1, status: "active" }]));
        const p = plan({
          epoch: 1,
          flag: "orchestrated",
          catalog: st.catalog,
          rows: st.rows,
          instances,
          members: st.members,
          policy: { imbalanceThreshold: 0.15, maxStreamDifference: 3, rebalanceAllowed: st.rebalanceAllowed, force: st.force },
          requireWorker: true,
          legacy: st.legacy,
        });
        const holders = (s: string) => [...st.members.values()].filter((m) => isLive(m) && m.hb!.held.includes(s)).map((m) => m.id);
        const finalOwner = new Map<string, string>();
        for (const r of st.rows.values()) finalOwner.set(r.stream, r.owner);
        for (const op of p.ops) {
          if (op.op === "put") {
            const s = op.row.stream;
            const to = op.row.owner;
            // Never onto a stream someone else holds, or a legacy member owns.
            expect(holders(s).filter((h) => h !== to)).toEqual([]);
            expect(st.legacy.has(s)).toBe(false);
            const row = st.rows.get(s);
            if (row && row.owner !== to) {
              const owner = st.members.get(row.owner);
              if (row.state === "active") {
                // A live owner's stream is revoked first, never moved in one step.
                expect(isLive(owner)).toBe(false);
              } else if (isLive(owner) && !p.hashedMembers.has(row.owner)) {
                // A revocation completes only when released at a version ≥ the revocation.
                expect(owner!.hb!.held.includes(s)).toBe(false);
                expect(owner!.hb!.version).toBeGreaterThanOrEqual(row.revokeVersion ?? 0);
              }
            }
            finalOwner.set(s, to);
          } else if (op.op === "delete") {
            finalOwner.delete(op.stream);
          }
        }
        // Capacity: no member ends up with more active streams than its capacity
        // (only counting streams this plan placed; old rows may predate a shrink).
        const placed = new Map<string, number>();
        for (const op of p.ops) if (op.op === "put") placed.set(op.row.owner, (placed.get(op.row.owner) ?? 0) + 1);
        for (const [id, n] of placed) {
          const m = st.members.get(id)!;
          expect(n).toBeLessThanOrEqual(Math.max(0, m.hb!.capacity));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
