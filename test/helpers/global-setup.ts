/**
 * Runs once before the suite: fails the whole run, loudly, when PostgreSQL or Redis is
 * not there. Tests never skip because a service is missing. Builds dist/ when it is
 * missing or stale, so that the first cluster test does not spend its hook's time on the
 * build (test/helpers/cluster.ts checks again, cheaply, for runs without this setup).
 */
import { ADMIN_DATABASE_URL, REDIS_URL, connectTestRedis } from "./services.js";
import { ensureBuilt, productionCommand } from "./production-command.js";
import postgres from "postgres";

export default async function setup(): Promise<void> {
  const sql = postgres(ADMIN_DATABASE_URL, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    await sql`select 1`;
  } catch (err) {
    throw new Error(`The test suite needs PostgreSQL at ${ADMIN_DATABASE_URL} (set TEST_DATABASE_URL): ${(err as Error).message}`);
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
  const r = await connectTestRedis(REDIS_URL);
  r.disconnect();
  ensureBuilt(productionCommand().main, (line) => console.log(line));
}
