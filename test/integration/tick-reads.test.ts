/**
 * A leader tick's PostgreSQL reads go out together, against a real PostgreSQL: reads run
 * through shared/db.ts together() share one connection of the pool (so they are sent in
 * one write and answered in one round trip), a failed read is thrown only once the others
 * have settled and the connection is back in the pool; and leader/inputs.ts reads the
 * rows, instances, flag and stream health that way, after the membership.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, together, type Sql } from "../../shared/db.js";
import { migrate } from "../../shared/schema.js";
import { loadConfig } from "../../shared/config.js";
import { LeaderStore } from "../../leader/store.js";
import { StreamHealthStore } from "../../shared/stream-health-store.js";
import { readPlanSources, type SourceReaders } from "../../leader/inputs.js";
import type { Snapshot } from "../../shared/membership.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

const backend = async (via: Sql | undefined, pool: Sql): Promise<number> => {
  const [r] = await (via ?? pool)`select pg_backend_pid() as pid, pg_sleep(0.05)`;
  return r!.pid as number;
};

describe("a tick's reads on one connection", () => {
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

  it("reads run together share one backend; the same reads without it spread over the pool", async () => {
    const apart = await Promise.all([0, 1, 2].map(() => backend(undefined, pool)));
    expect(new Set(apart).size).toBeGreaterThan(1);
    const shared = await together<[number, number, number]>(pool, [(v) => backend(v, pool), (v) => backend(v, pool), (v) => backend(v, pool)]);
    expect(new Set(shared).size).toBe(1);
  });

  it("a failed read is thrown after the others settled, and the connection goes back to the pool", async () => {
    const one = connect(db.url, { max: 1 });
    try {
      let otherDone = false;
      const err = await together<[unknown, unknown]>(one, [
        (v) => v!`select nope from nowhere`,
        async (v) => {
          await v!`select pg_sleep(0.1)`;
          otherDone = true;
        },
      ]).catch((e: unknown) => e);
      expect(String(err)).toMatch(/nowhere/);
      expect(otherDone).toBe(true);
      // The pool's only connection was released: a plain query gets it.
      const [r] = await Promise.race([one`select 1 as x`, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the connection was not released")), 5000))]);
      expect(r!.x).toBe(1);
    } finally {
      await one.end();
    }
  });

  it("readPlanSources reads the store and the health on one connection, after the membership", async () => {
    const order: string[] = [];
    const vias: (Sql | undefined)[] = [];
    const store = new LeaderStore(pool, "orchestrator");
    const health = new StreamHealthStore(pool, "orchestrator");
    const settings = loadConfig({}).streamHealth;
    const snapshot = { at: 0, members: new Map(), leader: undefined, flag: undefined, incarnation: undefined, viewVersion: 0, viewGrewAt: 0, channels: { redis: true, postgres: true } } as Snapshot;
    const readers: SourceReaders = {
      tracker: {
        refresh: async () => {
          await new Promise((r) => setTimeout(r, 20));
          order.push("membership");
          return snapshot;
        },
      },
      store: {
        load: (via) => {
          order.push("store");
          vias.push(via);
          return store.load(undefined, via);
        },
      },
      health: {
        readForPlan: (ms, via) => {
          order.push("health");
          vias.push(via);
          return health.readForPlan(ms, via);
        },
      },
      pool,
      catalog: { get: async () => ({ streams: [] }), lastError: undefined } as unknown as SourceReaders["catalog"],
      catalogRefreshMs: 5000,
      legacy: { read: async () => ({ owned: new Map() }) } as unknown as SourceReaders["legacy"],
      healthSettings: settings,
    };
    const sources = await readPlanSources(readers);
    expect(order).toEqual(["membership", "store", "health"]);
    expect(vias[0]).toBeDefined();
    expect(vias[1]).toBe(vias[0]);
    expect(sources.state.flag.mode).toBe("orchestrated");
    expect(sources.health.records.size).toBe(0);
  });
});
