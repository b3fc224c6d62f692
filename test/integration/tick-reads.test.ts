/**
 * A leader tick's reads (leader/inputs.ts readPlanSources), against a real PostgreSQL:
 * the membership first (every member it shows alive registered before the instances are
 * read), then the rows, instances and flag and the stream health sent at once, not one
 * after the other.
 */
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
});
