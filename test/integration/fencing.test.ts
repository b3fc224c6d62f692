/**
 * The fencing epoch, against a real PostgreSQL: a leader whose epoch was superseded
 * cannot write; its transaction fails and nothing of it lands.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db.js";
import { migrate } from "../../shared/schema.js";
import { FencedOutError, LeaderStore } from "../../leader/store.js";
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
    const e1 = await a.bumpEpoch("A");
    await a.apply(e1, [put("1", "A")], new Set(["A"]), new Map(), [{ kind: "assign", stream_id: "1" }]);
    const e2 = await b.bumpEpoch("B");
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
    const e = await a.bumpEpoch("A");
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
    const bump = b.bumpEpoch("B");
    await Promise.all([...writes, bump]);
    const newEpoch = await bump;
    const landed = await db.sql`select stream_id, epoch from orchestrator.assignments where stream_id like 'c%'`;
    expect(landed.length).toBe(results.filter((r) => r === "ok").length);
    for (const r of landed) expect(Number(r.epoch)).toBeLessThan(newEpoch);
    // After the bump, the old epoch can never write again.
    await expect(a.apply(e, [put("late", "A")], new Set(["A"]), new Map(), [])).rejects.toBeInstanceOf(FencedOutError);
  });

  it("a new leader learns when the last rebalance was, so its cooldown survives the change", async () => {
    expect(await a.lastRebalanceAgoMs()).toBeNull();
    const e = await a.bumpEpoch("A");
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
    expect(results.flat()).toEqual([1, 2, 3, 4, 6]);
    expect(await migrate(sqlB, "orchestrator_concurrent")).toEqual([]);
    const t = await db.sql`select count(*)::int as n from information_schema.tables where table_schema = 'orchestrator_concurrent'`;
    expect(t[0]!.n).toBe(7);
  });
});
