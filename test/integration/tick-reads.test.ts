/**
 * A leader tick's reads (leader/inputs.ts readPlanSources), against a real PostgreSQL:
 * the membership first (every member it shows alive registered before the instances are
 * read), then the rows, instances and flag and the stream health sent at once, not one
 * after the other; and once the rows come from the leader's mirror, those reads take two
 * queries in all (the instances and the flag in one, the health records and the failure
 * memory in the other), each answering what it did as two.
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db.js";
import { migrate } from "../../shared/schema.js";
import { loadConfig } from "../../shared/config.js";
import { LeaderStore } from "../../leader/store.js";
import { StreamHealthStore } from "../../shared/stream-health-store.js";
import { readPlanSources, type SourceReaders } from "../../leader/inputs.js";
import type { Snapshot } from "../../shared/membership.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

describe("a tick's reads", () => {
  let db: TestDatabase;
  let pool: Sql;

  beforeAll(async () => {
    db = await createTestDatabase("tickreads");
    pool = connect(db.url, { max: 4 });
    await migrate(pool, "orchestrator");
  });

  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it("reads the membership first, then the store and the health at once", async () => {
    const order: string[] = [];
    const store = new LeaderStore(pool, "orchestrator");
    const health = new StreamHealthStore(pool, "orchestrator");
    const snapshot = { at: 0, members: new Map(), leader: undefined, flag: undefined, incarnation: undefined, viewVersion: 0, viewGrewAt: 0, channels: { redis: true, postgres: true } } as Snapshot;
    const readers: SourceReaders = {
      tracker: {
        refresh: async () => {
          await new Promise((r) => setTimeout(r, 20));
          order.push("membership read");
          return snapshot;
        },
      },
      store: {
        load: async () => {
          order.push("store sent");
          const state = await store.load();
          order.push("store read");
          return state;
        },
      },
      health: {
        readForPlan: async (ms) => {
          order.push("health sent");
          const view = await health.readForPlan(ms);
          order.push("health read");
          return view;
        },
      },
      catalog: { get: async () => ({ streams: [] }), lastError: undefined } as unknown as SourceReaders["catalog"],
      catalogRefreshMs: 5000,
      legacy: { read: async () => ({ owned: new Map() }) } as unknown as SourceReaders["legacy"],
      healthSettings: loadConfig({}).streamHealth,
    };
    const sources = await readPlanSources(readers);
    expect(order.slice(0, 3)).toEqual(["membership read", "store sent", "health sent"]);
    expect(order.slice(3).sort()).toEqual(["health read", "store read"]);
    expect(sources.state.flag.mode).toBe("orchestrated");
    expect(sources.health.records.size).toBe(0);
  });

  it("sends the store's and the health's tick reads as two queries, with what four answered", async () => {
    const sent: string[] = [];
    const watched = postgres(db.url, { max: 2, debug: (_c, query) => void sent.push(query) }) as unknown as Sql;
    try {
      const store = new LeaderStore(watched, "orchestrator");
      const health = new StreamHealthStore(watched, "orchestrator");
      await pool.unsafe(`insert into orchestrator.instances (id, draining, version, epoch, status) values ('w1', true, 3, 2, 'active') on conflict (id) do nothing`);
      await health.recordOutcomes("w1", ["s1"], [{ id: "s2", error: "403" }]);
      await pool.unsafe(`insert into orchestrator.stream_failures (stream_id, instance_id, exit_label, error) values ('s3', 'w1', 'capture', 'gone'), ('s3', 'w2', null, null)`);
      const epoch = await store.currentEpoch();
      await store.load({ epoch, now: 0 }); // the term's first read fills the mirror
      sent.length = 0;
      const [state, view] = await Promise.all([store.load({ epoch, now: 1 }), health.readForPlan(600_000)]);
      expect(sent, sent.join("\n---\n")).toHaveLength(2);
      expect(state.flag.mode).toBe("orchestrated");
      expect(state.instances.get("w1")).toMatchObject({ id: "w1", draining: true, version: 3, epoch: 2 });
      expect([...view.records.keys()]).toEqual(["s2"]); // s3 has failures but no record
      expect(view.records.get("s2")).toMatchObject({ failingOn: "w1", lastError: "403" });
      expect(view.failures.get("s3")?.map((f) => f.instance)).toEqual(["w2", "w1"]);
      expect(view.failures.get("s3")?.[0]).toMatchObject({ exit: null, sinceOk: true });
      expect(view.failures.get("s3")?.[1]?.agoMs).toBeGreaterThanOrEqual(0);
    } finally {
      await watched.end();
    }
  });
});
