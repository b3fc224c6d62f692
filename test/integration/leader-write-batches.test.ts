/**
 * A large fenced write (leader/store.ts), against a real PostgreSQL: its rows go in
 * statements of at most WRITE_BATCH, each reported as progress (a cold start's tens of
 * thousands of moves are slow, not stalled: leader/stall.ts), all in one transaction;
 * once the term's signal aborts, no further statement is sent and nothing lands, and the
 * leadership row is free for the successor's epoch bump at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db.js";
import { migrate } from "../../shared/schema.js";
import { LeaderStore, WRITE_BATCH } from "../../leader/store.js";
import type { RowOp } from "../../shared/placement/plan.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

const put = (stream: string, owner: string): RowOp => ({
  op: "put",
  row: { stream, owner, state: "active", next: null, revokeVersion: null, reason: "catalog", url: `http://x.invalid/${stream}`, name: stream, metadata: {} },
  bump: owner,
  reason: "catalog",
  from: null,
});

describe("a large fenced write", { timeout: 60_000 }, () => {
  let db: TestDatabase;
  let sql: Sql;
  const N = 2 * WRITE_BATCH + 500;

  beforeAll(async () => {
    db = await createTestDatabase("write_batches");
    sql = connect(db.url);
    await migrate(sql, "orchestrator");
  });

  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  const count = async (table: "assignments" | "events") => Number((await db.sql.unsafe(`select count(*)::int as n from orchestrator.${table}`))[0]!.n);

  it("goes in batches, each statement reported, and lands whole", async () => {
    const store = new LeaderStore(sql, "orchestrator");
    const e = await store.bumpEpoch("A", await store.currentEpoch());
    const ops = Array.from({ length: N }, (_, i) => put(`s${i}`, i % 2 ? "A" : "B"));
    const events = ops.map((o) => ({ kind: "assign" as const, stream_id: o.op === "put" ? o.row.stream : "" }));
    const before = { rows: await count("assignments"), events: await count("events") };
    let statements = 0;
    await store.apply(e, ops, new Set(["A", "B"]), new Map(), events, new Map(), { progress: () => statements++ });
    // The epoch check, the version bump, three batches of rows, three of events.
    expect(statements).toBe(1 + 1 + 3 + 3);
    expect(await count("assignments")).toBe(before.rows + N);
    expect(await count("events")).toBe(before.events + N);
  });

  it("sends nothing more once the term ended: the transaction rolls back whole and frees the leadership row", async () => {
    const store = new LeaderStore(sql, "orchestrator");
    const e = await store.bumpEpoch("A", await store.currentEpoch());
    const before = { rows: await count("assignments"), events: await count("events") };
    const ops = Array.from({ length: N }, (_, i) => put(`t${i}`, "A"));
    const term = new AbortController();
    let statements = 0;
    const write = store.apply(e, ops, new Set(["A"]), new Map(), ops.map(() => ({ kind: "assign" as const })), new Map(), {
      signal: term.signal,
      progress: () => {
        // The term ends after the first batch of rows.
        if (++statements === 3) term.abort();
      },
    });
    await expect(write).rejects.toThrow();
    expect(statements).toBe(3);
    expect(await count("assignments")).toBe(before.rows);
    expect(await count("events")).toBe(before.events);
    // A successor's bump does not wait for the abandoned transaction.
    const successor = new LeaderStore(sql, "orchestrator");
    const t0 = performance.now();
    const e2 = await successor.bumpEpoch("B", await successor.currentEpoch());
    expect(e2).toBe(e + 1);
    expect(performance.now() - t0).toBeLessThan(5_000);
    // The aborted store reads in full again (its mirror was dropped) and sees no t-rows.
    expect([...(await store.load()).rows.keys()].some((k) => k.startsWith("t"))).toBe(false);
  });
});
