/**
 * The fencing epoch, against a real PostgreSQL: a leader whose epoch was superseded
 * cannot write; its transaction fails and nothing of it lands. A new leader's bump is a
 * compare-and-set: one that lands late cannot take the epoch from a successor.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db.js";
import { LATEST_MIGRATION, migrate } from "../../shared/schema.js";
import { EpochMovedError, FencedOutError, LeaderStore } from "../../leader/store.js";
import type { RowOp } from "../../shared/placement/plan.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

function put(stream: string, owner: string): RowOp {
  return { op: "put", row: { stream, owner, state: "active", next: null, revokeVersion: null, reason: "catalog", url: `http://x.invalid/${stream}`, name: stream, metadata: {} }, bump: owner, reason: "catalog", from: null };
}

describe("fencing epoch", () => {
  let db: TestDatabase;
  let sqlA: Sql;
  let sqlB: Sql;
  let a: LeaderStore;
  let b: LeaderStore;

  beforeAll(async () => {
    db = await createTestDatabase("fencing");
    sqlA = connect(db.url);
    sqlB = connect(db.url);
    await migrate(sqlA, "orchestrator");
    a = new LeaderStore(sqlA, "orchestrator");
    b = new LeaderStore(sqlB, "orchestrator");
  });

  afterAll(async () => {
    await sqlA?.end();
    await sqlB?.end();
    await db?.drop();
  });

  it("a deposed leader's write fails and nothing lands", async () => {
    const e1 = await a.bumpEpoch("A", await a.currentEpoch());
    await a.apply(e1, [put("1", "A")], new Set(["A"]), new Map(), [{ kind: "assign", stream_id: "1" }]);
    const e2 = await b.bumpEpoch("B", await b.currentEpoch());
    expect(e2).toBe(e1 + 1);
    await expect(a.apply(e1, [put("2", "A"), put("1", "A2")], new Set(["A", "A2"]), new Map([["A", "active"]]), [{ kind: "assign", stream_id: "2" }])).rejects.toBeInstanceOf(FencedOutError);
    const rows = await db.sql`select stream_id, instance_id from orchestrator.assignments order by stream_id`;
    expect(rows.map((r) => [r.stream_id, r.instance_id])).toEqual([["1", "A"]]);
    const inst = await db.sql`select id from orchestrator.instances where id = 'A2'`;
    expect(inst.length).toBe(0);
    const events = await db.sql`select count(*)::int as n from orchestrator.events where stream_id = '2'`;
    expect(events[0]!.n).toBe(0);
    // The current leader still writes.
    await b.apply(e2, [put("2", "B")], new Set(["B"]), new Map(), []);
    expect((await db.sql`select instance_id from orchestrator.assignments where stream_id = '2'`)[0]!.instance_id).toBe("B");
  });

  it("under concurrency, every write is ordered against the epoch bump: before it, or refused", async () => {
    const e = await a.bumpEpoch("A", await a.currentEpoch());
    const results: ("ok" | "fenced")[] = [];
    const writes = Array.from({ length: 20 }, (_, i) =>
      a
        .apply(e, [put(`c${i}`, "A")], new Set(["A"]), new Map(), [])
        .then(() => results.push("ok"))
        .catch((err) => {
          expect(err).toBeInstanceOf(FencedOutError);
          results.push("fenced");
        }),
    );
    const bump = b.bumpEpoch("B", await b.currentEpoch());
    await Promise.all([...writes, bump]);
    const newEpoch = await bump;
    const landed = await db.sql`select stream_id, epoch from orchestrator.assignments where stream_id like 'c%'`;
    expect(landed.length).toBe(results.filter((r) => r === "ok").length);
    for (const r of landed) expect(Number(r.epoch)).toBeLessThan(newEpoch);
    // After the bump, the old epoch can never write again.
    await expect(a.apply(e, [put("late", "A")], new Set(["A"]), new Map(), [])).rejects.toBeInstanceOf(FencedOutError);
  });

  it("a bump that lands after a successor's changes nothing: the successor keeps the epoch and writes", async () => {
    // Regression: the bump was unconditional, so a bump sent by a leader that had since
    // stepped aside (held up behind a lock or on a cut link) and landing after its
    // successor's took the epoch from the successor, whose next write was fenced out.
    const lateSeen = await a.currentEpoch();
    const e = await b.bumpEpoch("B", await b.currentEpoch());
    expect(e).toBe(lateSeen + 1);
    await expect(a.bumpEpoch("A", lateSeen)).rejects.toBeInstanceOf(EpochMovedError);
    const [row] = await db.sql`select epoch, leader_id from orchestrator.leadership`;
    expect([Number(row!.epoch), row!.leader_id]).toEqual([e, "B"]);
    const elected = await db.sql`select to_instance from orchestrator.events where kind = 'leader' and epoch > ${lateSeen}`;
    expect(elected.map((r) => r.to_instance)).toEqual(["B"]);
    await b.apply(e, [put("after-late", "B")], new Set(["B"]), new Map(), []);
    expect((await db.sql`select epoch from orchestrator.assignments where stream_id = 'after-late'`)[0]!.epoch).toBe(String(e));
  });

  it("of two bumps from the same read, queued behind a fenced write, exactly one lands; the other reads again and wins the next", async () => {
    const e0 = await a.currentEpoch();
    // A write in flight holds the leadership row (FOR SHARE, as every fenced write does).
    const held = await db.sql.reserve();
    await held`begin`;
    await held`select epoch from orchestrator.leadership for share`;
    const bumps = [a.bumpEpoch("A", e0), b.bumpEpoch("B", e0)].map((p) => p.then((e) => ({ e }), (err: unknown) => ({ err })));
    // Both wait on the lock before it is let go.
    let waiting = 0;
    for (let i = 0; i < 400 && waiting < 2; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const [w] = await db.sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%leadership%epoch = epoch + 1%'`;
      waiting = w!.n;
    }
    expect(waiting).toBe(2);
    await held`commit`;
    held.release();
    const results = await Promise.all(bumps);
    const won = results.filter((r): r is { e: number } => "e" in r);
    const moved = results.filter((r) => "err" in r);
    expect(won.map((r) => r.e)).toEqual([e0 + 1]);
    expect(moved).toHaveLength(1);
    expect((moved[0] as { err: unknown }).err).toBeInstanceOf(EpochMovedError);
    // The one that lost reads again and bumps past it.
    const loser = won[0] === results[0] ? b : a;
    expect(await loser.bumpEpoch("again", await loser.currentEpoch())).toBe(e0 + 2);
  });

  it("a new leader learns when the last rebalance was, so its cooldown survives the change", async () => {
    expect(await a.lastRebalanceAgoMs()).toBeNull();
    const e = await a.bumpEpoch("A", await a.currentEpoch());
    // A failover is not a rebalance; a revoke for a join is.
    await a.apply(e, [], new Set(), new Map(), [{ kind: "revoke", stream_id: "1", reason: "failover" }]);
    expect(await a.lastRebalanceAgoMs()).toBeNull();
    await a.apply(e, [], new Set(), new Map(), [{ kind: "revoke", stream_id: "1", reason: "join" }]);
    const ago = await b.lastRebalanceAgoMs();
    expect(ago).not.toBeNull();
    expect(ago!).toBeGreaterThanOrEqual(0);
    expect(ago!).toBeLessThan(60_000);
  });

  it("prunes only events older than the retention", async () => {
    await db.sql`insert into orchestrator.events (kind, reason, at) values ('assign', 'old', now() - interval '2 hours'), ('assign', 'new', now())`;
    expect(await a.pruneEvents(3_600_000)).toBe(1);
    const left = await db.sql`select reason from orchestrator.events where reason in ('old', 'new')`;
    expect(left.map((r) => r.reason)).toEqual(["new"]);
  });

  it("migrations are idempotent and safe to run from many agents at once", async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => migrate(sqlA, "orchestrator_concurrent")));
    expect(results.flat()).toEqual(Array.from({ length: LATEST_MIGRATION }, (_, i) => i + 1));
    expect(await migrate(sqlB, "orchestrator_concurrent")).toEqual([]);
    const t = await db.sql`select count(*)::int as n from information_schema.tables where table_schema = 'orchestrator_concurrent'`;
    expect(t[0]!.n).toBe(10); // migrations, leadership, cluster, instances, assignments, events, heartbeats, stream_health, stream_failures, health_samples
  });
});
