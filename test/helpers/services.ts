/**
 * Real PostgreSQL and Redis for tests. Every test file gets its own database and its own
 * Redis key prefix, so files never see each other's state. A missing service fails the
 * test loudly; nothing is ever skipped.
 *
 * TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) is the admin
 * connection used to create the per-file databases; TEST_REDIS_URL defaults to
 * redis://127.0.0.1:6379.
 */
import crypto from "node:crypto";
import postgres from "postgres";
import { Redis } from "ioredis";
import { withDatabase } from "../../tools/demo-db.js";

export { clearPrefix } from "../../tools/redis-keys.js";

export const ADMIN_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export function uniqueName(tag: string): string {
  return `t_${tag.replace(/[^a-z0-9]/gi, "_").toLowerCase().slice(0, 20)}_${crypto.randomBytes(4).toString("hex")}`;
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  readonly sql: postgres.Sql;
  drop(): Promise<void>;
}

/** Creates a fresh database for one test file. Throws a clear error if Postgres is unreachable. */
export async function createTestDatabase(tag: string): Promise<TestDatabase> {
  const admin = postgres(ADMIN_DATABASE_URL, { max: 1, connect_timeout: 5, onnotice: () => {} });
  const name = uniqueName(tag);
  try {
    await admin.unsafe(`create database ${name}`);
  } catch (err) {
    await admin.end({ timeout: 1 }).catch(() => {});
    throw new Error(`PostgreSQL is required for this test and is not reachable at ${ADMIN_DATABASE_URL}: ${(err as Error).message}`);
  }
  await admin.end({ timeout: 1 });
  const url = withDatabase(ADMIN_DATABASE_URL, name);
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  return {
    name,
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 2 }).catch(() => {});
      const a = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
      await a.end({ timeout: 1 }).catch(() => {});
    },
  };
}

/** A Redis client for a test, checked to answer. */
export async function connectTestRedis(url = REDIS_URL): Promise<Redis> {
  const r = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true, protocol: 2 });
  r.on("error", () => {});
  try {
    await r.connect();
    await r.ping();
  } catch (err) {
    r.disconnect();
    throw new Error(`Redis is required for this test and is not reachable at ${url}: ${(err as Error).message}`);
  }
  return r;
}

/** Creates a catalog table `streams` with n rows (ids 1..n). */
export async function createCatalog(sql: postgres.Sql, n: number, table = "streams"): Promise<void> {
  await sql.unsafe(`create table ${table} (id serial primary key, url text, name text, active boolean not null default true, created_at timestamptz default now(), metadata jsonb)`);
  if (n > 0) {
    await sql.unsafe(
      `insert into ${table} (url, name, metadata) select 'http://radio.example.invalid/s' || g, 'Stream ' || g, jsonb_build_object('city', 'City ' || (g % 7)) from generate_series(1, $1) g`,
      [n],
    );
  }
}
