/**
 * The leader's figures read (shared/stream-health-store.ts readStates) against a real
 * PostgreSQL: the records come grouped by state, one id list per group, and every stream
 * reads as healthy, failing, quarantined or unknown exactly as a read of its own row says,
 * for any owner; ids that need quoting in JSON come back as written.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db.js";
import { migrate } from "../../shared/schema.js";
import { StreamHealthStore } from "../../shared/stream-health-store.js";
import { healthOf } from "../../shared/stream-health.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

describe("the leader's figures read", () => {
  let db: TestDatabase;
  let sql: Sql;

  beforeAll(async () => {
    db = await createTestDatabase("health_states");
    sql = connect(db.url, { max: 2 });
    await migrate(sql, "orchestrator");
  });

  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  it("gives every stream the health its own row gives, whoever owns it", async () => {
    const health = new StreamHealthStore(sql, "orchestrator");
    expect((await health.readStates()).size).toBe(0);
    const odd = ['q"uote', "back\\slash", "new\nline", "ünï 🎵"];
    await health.recordOutcomes("w1", ["ok1", "ok2", "was-ok", ...odd], []);
    await health.recordOutcomes("w1", [], [{ id: "was-ok", error: "403" }, { id: "never-ok", error: "dns" }]);
    await health.recordOutcomes("w2", [], [{ id: "on-w2", error: "timeout" }]);
    await sql.unsafe(`insert into orchestrator.stream_health (stream_id) values ('nothing-yet')`);
    await sql.unsafe(`insert into orchestrator.stream_health (stream_id, quarantined_at, last_ok_at) values ('quarantined', now(), null), ('quarantined-was-ok', now() - interval '1 hour', now() - interval '2 hours')`);
    await sql.unsafe(`insert into orchestrator.stream_health (stream_id, quarantined_at, failing_on, failing_since) values ('quarantined-failing', now(), 'w1', now())`);

    const states = await health.readStates();
    const rows = await sql.unsafe(`select stream_id, failing_on, quarantined_at, last_ok_at from orchestrator.stream_health`);
    expect(states.size).toBe(rows.length);
    for (const r of rows) {
      const own = { failingOn: (r.failing_on as string | null) ?? null, quarantinedAt: r.quarantined_at === null ? null : "set", lastOkAt: r.last_ok_at === null ? null : "set" };
      const read = states.get(r.stream_id as string);
      expect(read, String(r.stream_id)).toBeDefined();
      for (const owner of [null, "w1", "w2", "w3"]) expect(healthOf(read, owner), `${String(r.stream_id)} on ${owner}`).toBe(healthOf(own, owner));
    }
    expect(healthOf(states.get("ok1"), "w1")).toBe("ok");
    expect(healthOf(states.get("was-ok"), "w1")).toBe("failing");
    expect(healthOf(states.get("was-ok"), "w2")).toBe("ok");
    expect(healthOf(states.get("never-ok"), "w2")).toBe("unknown");
    expect(healthOf(states.get("on-w2"), "w2")).toBe("failing");
    expect(healthOf(states.get("nothing-yet"), "w1")).toBe("unknown");
    expect(healthOf(states.get("quarantined-was-ok"), null)).toBe("quarantined");
    for (const id of odd) expect(healthOf(states.get(id), "w1"), id).toBe("ok");
    // Records that share a state share its object: a few groups, not a row per stream.
    expect(states.get("ok1")).toBe(states.get("ok2"));
    const shapes = new Set(rows.map((r) => JSON.stringify([r.failing_on, r.quarantined_at === null, r.last_ok_at === null])));
    expect(new Set(states.values()).size).toBe(shapes.size);
  });
});
