/**
 * Which Redis the deciders read, recorded in PostgreSQL by the leader and read back by
 * every agent's PostgreSQL heartbeat write (shared/pg-heartbeats.ts, leader/store.ts), on
 * a real PostgreSQL: null until a leader records one; the current leader's value after;
 * a deposed leader's write (an older epoch) never lands.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LeaderStore } from "../../leader/store.js";
import { PgHeartbeats } from "../../shared/pg-heartbeats.js";
import { migrate } from "../../shared/schema.js";
import type { Heartbeat } from "../../shared/types.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

const hb = (seq: number) => ({ id: "a", session: "s1", seq, held: [] }) as unknown as Heartbeat;

describe("the deciders' Redis in PostgreSQL", () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase("deciders_redis");
    await migrate(db.sql, "orchestrator");
  });

  afterAll(async () => {
    await db?.drop();
  });

  it("is read back by the heartbeat write; only the current epoch's leader can change it", async () => {
    const beats = new PgHeartbeats(db.sql, "orchestrator");
    const store = new LeaderStore(db.sql, "orchestrator");
    expect(await beats.write(hb(1))).toEqual({ deciderRedis: null });
    const first = await store.bumpEpoch("l1", await store.currentEpoch());
    await store.recordRedis(first, "redis-a");
    expect(await beats.write(hb(2))).toEqual({ deciderRedis: "redis-a" });
    const second = await store.bumpEpoch("l2", await store.currentEpoch());
    await store.recordRedis(first, "redis-stale");
    expect(await beats.write(hb(3))).toEqual({ deciderRedis: "redis-a" });
    await store.recordRedis(second, "redis-b");
    // A write that does not land (an older seq) still reads the value.
    expect(await beats.write(hb(1))).toEqual({ deciderRedis: "redis-b" });
    const rows = await beats.readAll(60_000);
    expect(rows.map((r) => r.heartbeat.seq)).toEqual([3]);
  });
});
