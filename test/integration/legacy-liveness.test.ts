/**
 * Legacy members' liveness is judged on the agent's own clock: a legacy instance is alive
 * while its `last_heartbeat` value keeps changing, however wrong the clock it writes with.
 * Regression: liveness compared the written timestamp with PostgreSQL's clock, so a
 * legacy host whose clock lags counted as dead while it served (and its streams could be
 * given to sidecars), and one whose clock runs ahead stayed alive after it died.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../shared/clock.js";
import type { Sql } from "../../shared/db.js";
import { LegacyView } from "../../shared/legacy.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

const TIMEOUT = 5_000;

describe("legacy liveness on the agent's clock", () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase("legacy_live");
    await db.sql.unsafe("create table server_heartbeats (server_id varchar primary key, last_heartbeat timestamptz, status varchar, ip_address varchar, info jsonb)");
  });

  afterAll(async () => {
    await db?.drop();
  });

  const write = (id: string, sqlTime: string) =>
    db.sql.unsafe(`insert into server_heartbeats (server_id, last_heartbeat, status) values ($1, ${sqlTime}, 'online') on conflict (server_id) do update set last_heartbeat = excluded.last_heartbeat`, [id]);

  it("a lagging legacy clock: dead at first sight, alive once its value changes, dead after TIMEOUT without a change", async () => {
    const clock = new ManualClock();
    const view = new LegacyView({ sql: db.sql as unknown as Sql, table: "server_heartbeats", timeoutMs: TIMEOUT, totalServers: 4, clock, maxAgeMs: 0 });
    await write("3", "now() - interval '1 hour'");
    expect((await view.members()).map((m) => m.id)).toEqual([]);
    await clock.advance(1_000);
    await write("3", "now() - interval '1 hour' + interval '1 minute'"); // its next write, still an hour behind
    expect((await view.members()).map((m) => m.id)).toEqual(["3"]);
    await clock.advance(TIMEOUT - 100);
    expect((await view.members()).map((m) => m.id)).toEqual(["3"]);
    await clock.advance(200);
    expect((await view.members()).map((m) => m.id)).toEqual([]);
  });

  it("a clock running ahead does not keep a dead instance alive: without a change it dies after TIMEOUT", async () => {
    const clock = new ManualClock();
    const view = new LegacyView({ sql: db.sql as unknown as Sql, table: "server_heartbeats", timeoutMs: TIMEOUT, totalServers: 4, clock, maxAgeMs: 0 });
    await write("4", "now() + interval '1 hour'");
    expect((await view.members()).map((m) => m.id)).toContain("4");
    await clock.advance(TIMEOUT + 1);
    expect((await view.members()).map((m) => m.id)).not.toContain("4");
  });
});
