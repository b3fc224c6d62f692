/**
 * migrate() against a real PostgreSQL: a schema already current is recognised without the
 * migration lock, so agents starting together do not queue behind each other (or behind
 * anyone holding the lock) to learn that there is nothing to do; a missing schema, or
 * one without its record, still migrates under the lock, each step once, also when many
 * agents migrate a new schema together.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db.js";
import { LATEST_MIGRATION, migrate } from "../../shared/schema.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

describe("migrate", () => {
  let db: TestDatabase;
  let sql: Sql;

  beforeAll(async () => {
    db = await createTestDatabase("schema_current");
    sql = connect(db.url);
  });

  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  it("applies every step once on an empty database, then nothing", async () => {
    const first = await Promise.all([migrate(sql, "orchestrator"), migrate(sql, "orchestrator")]);
    expect([...first[0]!, ...first[1]!].sort((a, b) => a - b)).toEqual(Array.from({ length: LATEST_MIGRATION }, (_, i) => i + 1));
    expect(await migrate(sql, "orchestrator")).toEqual([]);
  });

  it("a current schema does not wait for the migration lock", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = db.sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtext(${"fingerv7-sidecar-migrate:orchestrator"}))`;
      locked();
      await held;
    });
    await isLocked;
    try {
      const outcome = await Promise.race([migrate(sql, "orchestrator").then((a) => a), new Promise<"blocked">((r) => setTimeout(() => r("blocked"), 3000))]);
      expect(outcome).toEqual([]);
    } finally {
      release();
      await holder;
    }
  });

  it("eight agents migrating a new schema together: each step once, no duplicate-object error", async () => {
    // Regression: the lock-free check left each connection's catalog cache saying "no such
    // schema", and after waiting on the lock about half of these rounds failed with a
    // duplicate key in pg_namespace.
    for (let i = 0; i < 20; i++) {
      const rounds = await Promise.all(Array.from({ length: 8 }, () => migrate(sql, `together_${i}`)));
      expect(rounds.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: LATEST_MIGRATION }, (_, k) => k + 1));
    }
  });

  it("a schema that exists without its record migrates under the lock", async () => {
    await db.sql.unsafe(`create schema bare`);
    expect((await migrate(sql, "bare")).length).toBe(LATEST_MIGRATION);
    expect(await migrate(sql, "bare")).toEqual([]);
  });
});
