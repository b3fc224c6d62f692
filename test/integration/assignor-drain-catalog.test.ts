/**
 * The assignor in its real surroundings: three in-process agents (one of them leads) on a
 * real PostgreSQL and Redis, the operator's catalog table, the fenced writer and the
 * events table. Drain and undrain (Store.setDraining, as the admin API does), then
 * catalog changes: rows added, `active` set false, rows deleted. Each step checks that
 * only what must move moves, that every move is recorded with its reason, and that the
 * calm policy holds (no rebalance of the others while the imbalance is within the thresholds).
 *
 * No workers: REQUIRE_WORKER=false, so an agent holds nothing and handoffs finish as soon
 * as its heartbeat shows the revoke's version.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../agent/agent.js";
import { systemClock } from "../../shared/clock.js";
import { loadConfig } from "../../shared/config.js";
import { silentLogger } from "../../shared/logger.js";
import { FAST_TIMINGS, waitFor } from "../helpers/cluster.js";
import { REDIS_URL, clearPrefix, connectTestRedis, createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";

const IDS = ["a1", "a2", "a3"] as const;

describe("assignor against a real database: drain, undrain, catalog changes", () => {
  let db: TestDatabase;
  const prefix = uniqueName("assignor");
  const agents = new Map<string, Agent>();

  /** Active rows: stream → owner. */
  async function owners(): Promise<Map<string, string>> {
    const rows = await db.sql`select stream_id, instance_id, state from orchestrator.assignments`;
    return new Map(rows.filter((r) => r.state === "active").map((r) => [r.stream_id as string, r.instance_id as string]));
  }
  /**
   * Waits until the active rows match `expected` counts and nothing is in handoff, both
   * seen in ONE read: two reads could straddle a revoke (none revoking yet, then the
   * revoked rows already gone from the active counts) and settle before the handoff ends.
   */
  async function settleTo(expected: Record<string, number>, what: string): Promise<Map<string, string>> {
    await waitFor(
      async () => {
        const rows = await db.sql`select instance_id, state from orchestrator.assignments`;
        const active: Record<string, number> = Object.fromEntries(IDS.map((id) => [id, 0]));
        for (const r of rows) if (r.state === "active") active[r.instance_id as string] = (active[r.instance_id as string] ?? 0) + 1;
        return rows.every((r) => r.state !== "revoking") && JSON.stringify(active) === JSON.stringify(expected);
      },
      30_000,
      what,
      100,
    );
    return owners();
  }
  /** Events that assign or unassign a stream since event id `after`. */
  async function movesSince(after: number): Promise<{ kind: string; stream: string; from: string | null; to: string | null; reason: string }[]> {
    const rows = await db.sql`select kind, stream_id, from_instance, to_instance, reason from orchestrator.events
                               where id > ${after} and kind in ('assign', 'revoke', 'unassign') order by id`;
    return rows.map((r) => ({ kind: r.kind, stream: r.stream_id, from: r.from_instance, to: r.to_instance, reason: r.reason }));
  }
  async function lastEventId(): Promise<number> {
    return Number((await db.sql`select coalesce(max(id), 0) as n from orchestrator.events`)[0]!.n);
  }
  const changed = (a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>) =>
    [...new Set([...a.keys(), ...b.keys()])].filter((s) => a.get(s) !== b.get(s)).sort();

  beforeAll(async () => {
    db = await createTestDatabase("assignor_drain");
    await createCatalog(db.sql, 30);
    for (const id of IDS) {
      const config = loadConfig({
        DATABASE_URL: db.url,
        REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        INSTANCE_ID: id,
        MAX_STREAMS: "20",
        REQUIRE_WORKER: "false",
        REBALANCE_COOLDOWN: "300",
        LOG_LEVEL: "silent",
        ...FAST_TIMINGS,
      });
      const agent = new Agent({ config, clock: systemClock, logger: silentLogger() });
      agents.set(id, agent);
      await agent.start();
    }
  });

  afterAll(async () => {
    for (const a of [...agents.values()].reverse()) await a.close().catch(() => {});
    const redis = await connectTestRedis();
    await clearPrefix(redis, prefix);
    redis.disconnect();
    await db?.drop();
  });

  it("settles 30 streams as 10 / 10 / 10", async () => {
    await settleTo({ a1: 10, a2: 10, a3: 10 }, "the first placement");
  });

  it("a drain moves only the drained member's streams, each recorded with reason drain", async () => {
    const before = await owners();
    const mark = await lastEventId();
    expect(await agents.get("a1")!.operator.setDraining("a2", true)).toBe(true);
    const after = await settleTo({ a1: 15, a2: 0, a3: 15 }, "a2 to hand off its streams");
    const moved = changed(before, after);
    expect(moved).toEqual([...before].filter(([, o]) => o === "a2").map(([s]) => s).sort());
    const events = await movesSince(mark);
    expect(new Set(events.map((e) => e.stream))).toEqual(new Set(moved));
    // Break-before-make: a revoke, then the assignment to the new owner, both for the drain.
    for (const e of events) expect(e).toMatchObject({ from: "a2", reason: "drain" });
    for (const s of moved) expect(events.some((e) => e.stream === s && e.kind === "assign" && e.to === after.get(s))).toBe(true);
  });

  it("an undrain gives the member a fair share back, moving only that share", async () => {
    const before = await owners();
    const mark = await lastEventId();
    expect(await agents.get("a3")!.operator.setDraining("a2", false)).toBe(true);
    const after = await settleTo({ a1: 10, a2: 10, a3: 10 }, "a2 to get its share back");
    const moved = changed(before, after);
    expect(moved.length).toBe(10);
    for (const s of moved) expect(after.get(s)).toBe("a2");
    // a2 re-entering the pool is a join for the leader's policy (no cooldown wait).
    const events = await movesSince(mark);
    expect([...new Set(events.map((e) => e.stream))].sort()).toEqual(moved);
    for (const e of events) expect(e).toMatchObject({ reason: "join" });
  });

  it("catalog rows added are placed without moving any old stream", async () => {
    const before = await owners();
    const mark = await lastEventId();
    await db.sql.unsafe(`insert into streams (url, name) select 'http://radio.example.invalid/new' || g, 'New ' || g from generate_series(1, 6) g`);
    const after = await settleTo({ a1: 12, a2: 12, a3: 12 }, "the new streams to be placed");
    for (const [s, o] of before) expect(after.get(s)).toBe(o);
    const events = await movesSince(mark);
    expect(events.length).toBe(6);
    for (const e of events) expect(e).toMatchObject({ kind: "assign", from: null, reason: "catalog" });
  });

  it("rows set inactive are unassigned (revoked, then removed); the others stay (9 / 12 / 12 is within the thresholds)", async () => {
    const before = await owners();
    const mark = await lastEventId();
    const gone = [...before].filter(([, o]) => o === "a1").map(([s]) => s).sort().slice(0, 3);
    await db.sql`update streams set active = false where id::text in ${db.sql(gone)}`;
    const after = await settleTo({ a1: 9, a2: 12, a3: 12 }, "the inactive streams to be unassigned");
    expect(changed(before, after)).toEqual(gone);
    const events = await movesSince(mark);
    expect([...new Set(events.map((e) => e.stream))].sort()).toEqual(gone);
    for (const s of gone) {
      expect(events.filter((e) => e.stream === s).map((e) => e.kind)).toEqual(["revoke", "unassign"]);
    }
    for (const e of events) expect(e).toMatchObject({ from: "a1", to: null, reason: "catalog" });
  });

  it("deleted rows are unassigned too, and re-activated rows come back without moving others", async () => {
    const before = await owners();
    const gone = [...before].filter(([, o]) => o === "a2").map(([s]) => s).sort().slice(0, 2);
    await db.sql`delete from streams where id::text in ${db.sql(gone)}`;
    const mark0 = await lastEventId();
    const afterDelete = await settleTo({ a1: 9, a2: 10, a3: 12 }, "the deleted streams to be unassigned");
    expect(changed(before, afterDelete)).toEqual(gone);
    for (const e of await movesSince(mark0)) expect(e).toMatchObject({ from: "a2", to: null, reason: "catalog" });

    const mark = await lastEventId();
    await db.sql`update streams set active = true where active = false`;
    // 34 streams: targets 11 / 11 / 12 (a3 already holds 12 and keeps the rounding unit).
    const afterBack = await settleTo({ a1: 11, a2: 11, a3: 12 }, "re-activated rows to be placed");
    for (const [s, o] of afterDelete) expect(afterBack.get(s)).toBe(o);
    const events = await movesSince(mark);
    expect(events.length).toBe(3);
    for (const e of events) expect(e).toMatchObject({ kind: "assign", from: null, reason: "catalog" });
  });
});
