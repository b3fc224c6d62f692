/**
 * After a PostgreSQL outage, the agent's connections come back promptly. Regression:
 * postgres.js' default backoff grew to 20 s after a few refused attempts, so a 4 s outage
 * kept the leader from writing (and failing anyone over) for 10-20 s more.
 */
import { afterAll, describe, expect, it } from "vitest";
import { connect } from "../../shared/db.js";
import { PrivatePostgres } from "../helpers/private-servers.js";

describe("PostgreSQL reconnect", { timeout: 90_000 }, () => {
  let pg: PrivatePostgres | undefined;
  afterAll(async () => {
    await pg?.stop();
  });

  it("queries succeed again within a few seconds of the server coming back", async () => {
    pg = await PrivatePostgres.start();
    const sql = connect(pg.url, { max: 4, connectTimeout: 3 });
    try {
      await sql`select 1`;
      // Three loops query every 250 ms, as the agent's loaders and the leader do.
      let stop = false;
      let back = Infinity;
      const recovered: number[] = [];
      const loops = [0, 1, 2].map(async (k) => {
        while (!stop) {
          try {
            await sql`select 1`;
            if (performance.now() > back && recovered[k] === undefined) recovered[k] = performance.now() - back;
          } catch {
            // refused while the server is down: expected
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      });
      await new Promise((r) => setTimeout(r, 500));
      await pg.down();
      await new Promise((r) => setTimeout(r, 4000));
      await pg.up();
      back = performance.now();
      const t0 = performance.now();
      while ([0, 1, 2].some((k) => recovered[k] === undefined) && performance.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 100));
      stop = true;
      await Promise.all(loops);
      // Generous for a busy machine; the default backoff took 9-20 s here.
      for (const k of [0, 1, 2]) expect(recovered[k], `loop ${k}`).toBeLessThan(5000);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});
