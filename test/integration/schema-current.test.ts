/**
 * migrate() against a real PostgreSQL: a schema already current is recognised without the
 * migration lock, so agents starting together do not queue behind each other (or behind
 * anyone holding the lock) to learn that there is nothing to do; a missing schema, or
 * one without its record, still migrates under the lock, each step once, also when many
 * agents migrate a new schema together; the heartbeat digests are added over any rows the
 * table holds, and no payload can make a write fail on them.
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

  it("adds the heartbeat digests over whatever rows the table holds, and no payload fails a write", async () => {
    // A schema as the build before the digests left it, with agents' rows and an operator's odd ones.
    await migrate(sql, "digests");
    await db.sql.unsafe(`alter table digests.heartbeats drop column payload_seq, drop column worker, drop column core_md5, drop column held_md5, drop column states_md5`);
    await db.sql.unsafe(`delete from digests.migrations where id = 7`);
    const rows = [
      ["a", '{"id": "a", "seq": 1, "held": ["1"], "worker": {"ok": true, "processed": 3}}'],
      ["b", "7"],
      ["c", '["c"]'],
      ["d", '{"id": "d", "seq": "x", "worker": [1]}'],
      ["e", "null"],
    ];
    for (const [id, payload] of rows) await db.sql.unsafe(`insert into digests.heartbeats (instance_id, session, seq, payload) values ($1, 's', 1, $2::text::jsonb)`, [id!, payload!]);
    expect(await migrate(sql, "digests")).toEqual([7]);
    const got = await db.sql.unsafe(`select instance_id, payload_seq::text as payload_seq, core_md5 is not null as core, held_md5 is not null as held from digests.heartbeats order by instance_id`);
    expect(got.map((r) => [r.instance_id, r.payload_seq, r.core, r.held])).toEqual([
      ["a", "1", true, true],
      ["b", null, true, false],
      ["c", null, true, false],
      ["d", null, true, false],
      ["e", null, true, false],
    ]);
    // The worker's counters are no part of the core; its state is.
    const core = async (payload: string) => (await db.sql.unsafe(`update digests.heartbeats set payload = $1::text::jsonb where instance_id = 'a' returning core_md5`, [payload]))[0]!.core_md5;
    const base = await core('{"id": "a", "seq": 2, "held": ["2"], "states": {"2": {"s": "ok"}}, "worker": {"ok": true, "processed": 4, "errors": 1, "lastSeenMsAgo": 9}}');
    expect(await core('{"id": "a", "seq": 3, "held": ["3"], "worker": {"ok": true, "processed": 5, "errors": 2, "lastSeenMsAgo": 1}}')).toBe(base);
    expect(await core('{"id": "a", "seq": 4, "held": ["3"], "worker": {"ok": false, "processed": 5, "errors": 2, "lastSeenMsAgo": 1}}')).not.toBe(base);
  });

  it("a schema that exists without its record migrates under the lock", async () => {
    await db.sql.unsafe(`create schema bare`);
    expect((await migrate(sql, "bare")).length).toBe(LATEST_MIGRATION);
    expect(await migrate(sql, "bare")).toEqual([]);
  });
});
