/**
 * The leader's stream-health read (shared/stream-health-store.ts readForPlan) is planned at
 * every run, never kept as a prepared statement: stream_health grows from empty (a row per
 * stream once workers report) under the leader's ticks, and a prepared statement keeps
 * the plan made while it was empty, a whole-table scan, until an ANALYZE that does not
 * come where autovacuum is off (regression: 24–33 ms per tick at 100,000 streams instead
 * of 0.4 ms). Against a real PostgreSQL: after many reads on the empty table and its
 * growth, the agent's connection holds no prepared statement of that read, and the read
 * still returns what needs attention.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db.js";
import { migrate } from "../../shared/schema.js";
import { StreamHealthStore } from "../../shared/stream-health-store.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

describe("the leader's stream-health read", () => {
  let db: TestDatabase;
  let sql: Sql;

  beforeAll(async () => {
    db = await createTestDatabase("health_plans");
    // One connection: the statements it prepared are the ones pg_prepared_statements lists.
    sql = connect(db.url, { max: 1 });
    await migrate(sql, "orchestrator");
  });

  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  it("is planned at every run: no prepared plan of the empty table outlives its growth", async () => {
    const health = new StreamHealthStore(sql, "orchestrator");
    for (let i = 0; i < 12; i++) expect((await health.readForPlan(600_000)).records.size).toBe(0);
    await sql.unsafe(`insert into orchestrator.stream_health (stream_id, last_ok_at) select 's' || g, now() from generate_series(1, 20000) g`);
    await health.recordOutcomes("w1", [], [{ id: "s7", error: "403" }]);
    const view = await health.readForPlan(600_000);
    expect([...view.records.keys()]).toEqual(["s7"]);
    expect(view.records.get("s7")?.failingOn).toBe("w1");
    const prepared = await sql.unsafe(`select statement from pg_prepared_statements`);
    const kept = prepared.map((r) => String(r.statement)).filter((s) => /stream_failures|stream_health_attention|failing_on is not null/.test(s));
    expect(kept, prepared.map((r) => String(r.statement)).join("\n---\n")).toEqual([]);
    // The statements that are prepared on purpose still are (the outcomes' upsert).
    expect(prepared.some((r) => String(r.statement).includes("insert into"))).toBe(true);
  });
});
