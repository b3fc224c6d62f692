/**
 * Private PostgreSQL and Redis servers on free ports, for the tests that stop, restart or
 * freeze them: the demo's throwaway servers (tools/throwaway-services.ts), under the names
 * the tests use. `down()` is immediate (connections drop, like a crash), `up()` restarts
 * on the same port (Redis with no data), `stop()` also removes the data. Missing binaries
 * fail loudly.
 */
import postgres from "postgres";
import { ThrowawayPostgres, ThrowawayRedis } from "../../tools/throwaway-services.js";
import { createCatalog } from "./services.js";

export { ThrowawayPostgres as PrivatePostgres, ThrowawayRedis as PrivateRedis };

/** A private PostgreSQL (with a `streams` catalog of n rows) and a private Redis, started together. */
export async function privateServers(streams: number): Promise<{ pg: ThrowawayPostgres; redis: ThrowawayRedis; stop: () => Promise<void> }> {
  const [pg, redis] = await Promise.all([ThrowawayPostgres.start(), ThrowawayRedis.start()]);
  const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
  await createCatalog(sql, streams);
  await sql.end();
  return { pg, redis, stop: async () => void (await Promise.allSettled([pg.stop(), redis.stop()])) };
}
