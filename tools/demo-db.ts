/**
 * The demo's own place in PostgreSQL: a new database `fingerv7_demo_<random>` holding the
 * demo catalog (tools/demo-catalog.sql) and the orchestrator schema. When the role may not
 * create databases, a pair of new schemas in the given database instead (the catalog in
 * one, the orchestrator's tables in the other). Existing data is never read or written;
 * `drop()` removes only what was created here.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";

const CATALOG_SQL = path.join(path.dirname(fileURLToPath(import.meta.url)), "demo-catalog.sql");

export interface DemoDatabase {
  /** What the agents get: DATABASE_URL, and in schema mode STREAMS_TABLE and ORCHESTRATOR_SCHEMA. */
  readonly agentEnv: Readonly<Record<string, string>>;
  readonly describe: string;
  /** Active streams in the demo catalog right now. */
  activeStreams(): Promise<number>;
  drop(): Promise<void>;
}

/** Replaces the database name of a postgres URL. */
export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function createDemoDatabase(adminUrl: string): Promise<DemoDatabase> {
  const name = `fingerv7_demo_${crypto.randomBytes(4).toString("hex")}`;
  const catalogSql = fs.readFileSync(CATALOG_SQL, "utf8");
  const admin = postgres(adminUrl, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } catch (err) {
    if ((err as { code?: string }).code !== "42501") {
      await admin.end({ timeout: 1 }).catch(() => {});
      throw err;
    }
    return createDemoSchemas(admin, adminUrl, name, catalogSql);
  }
  await admin.end({ timeout: 1 }).catch(() => {});
  const url = withDatabase(adminUrl, name);
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql.unsafe(catalogSql).simple();
  return {
    agentEnv: { DATABASE_URL: url },
    describe: `database ${name}`,
    activeStreams: () => count(sql, "streams"),
    async drop() {
      await sql.end({ timeout: 1 }).catch(() => {});
      const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
      await a.end({ timeout: 1 }).catch(() => {});
    },
  };
}

/** The role may not create databases: two schemas of our own in the given database. */
async function createDemoSchemas(sql: postgres.Sql, url: string, name: string, catalogSql: string): Promise<DemoDatabase> {
  const orchestrator = `${name}_orch`;
  await sql.unsafe(`create schema ${name}`);
  await sql.begin(async (tx) => {
    await tx.unsafe(`set local search_path to ${name}`);
    await tx.unsafe(catalogSql).simple();
  });
  return {
    agentEnv: { DATABASE_URL: url, STREAMS_TABLE: `${name}.streams`, ORCHESTRATOR_SCHEMA: orchestrator },
    describe: `schemas ${name} (catalog) and ${orchestrator} (orchestrator)`,
    activeStreams: () => count(sql, `${name}.streams`),
    async drop() {
      await sql.unsafe(`drop schema if exists ${name} cascade`).catch(() => {});
      await sql.unsafe(`drop schema if exists ${orchestrator} cascade`).catch(() => {});
      await sql.end({ timeout: 1 }).catch(() => {});
    },
  };
}

async function count(sql: postgres.Sql, table: string): Promise<number> {
  const [row] = await sql.unsafe(`select count(*)::int as n from ${table} where active`);
  return (row?.n as number | undefined) ?? 0;
}
