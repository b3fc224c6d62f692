/**
 * The real catalog: the production `streams` table keyed by `index` (text or integer)
 * with url, name, sheet, cidade, estado, regiao, segmento (and in some deployments id,
 * assigned_server, active). Read with STREAMS_ID_COLUMN=index on a real PostgreSQL;
 * bad rows are skipped, never a crash; and the table is never written, checked both by
 * triggers that record any write and by comparing its contents before and after agents
 * ran against it.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CatalogError, parseCatalogRows, presentId, readCatalog } from "../../shared/catalog.js";
import { ConfigError, loadConfig } from "../../shared/config.js";
import { call, startAgent, waitSettled, type RunningAgent } from "../http/fixture.js";
import { waitFor } from "../helpers/cluster.js";
import { createTestDatabase, type TestDatabase, uniqueName } from "../helpers/services.js";

const PRODUCTION = ["sheet", "cidade", "estado", "regiao", "segmento"] as const;
const COLUMNS = `url text, name text, sheet text, cidade text, estado text, regiao text, segmento text`;

type Cell = string | number | boolean | null;

function row(url: string | null, name: string | null, index: string | number | null, extra: Record<string, Cell> = {}): Record<string, Cell> {
  return { url, name, sheet: "Radios", cidade: "Curitiba", estado: "PR", regiao: "Sul", segmento: "Jornalismo", index, ...extra };
}

describe("catalog with `index` as the id column", { timeout: 90_000 }, () => {
  let db: TestDatabase;
  const agents: RunningAgent[] = [];

  /** Everything in a table, in a stable order, as one text. */
  async function contents(table: string): Promise<string> {
    const [r] = await db.sql.unsafe(`select coalesce(string_agg(t::text, E'\\n' order by t::text), '') as body from ${table} t`);
    return String(r!.body);
  }

  beforeAll(async () => {
    db = await createTestDatabase("catalog");
    // Text ids, as some deployments store them, with every kind of bad row.
    await db.sql.unsafe(`create table streams (${COLUMNS}, index text)`);
    const text = [
      row("http://radio.example.invalid/a1", "Banda B FM Curitiba - PR", "1"),
      row("http://radio.example.invalid/a10", "Radio 10", "10"),
      row("http://radio.example.invalid/a2", "Radio 2", "2"),
      row("http://radio.example.invalid/a2-copy", "Radio 2 copy", "2"), // duplicate id: skipped
      row("http://radio.example.invalid/abc", "Radio ABC", "abc"), // a text id
      row("http://radio.example.invalid/a7", "  Radio 7  ", " 7 "), // trimmed
      row("http://radio.example.invalid/null", "No id", null), // NULL id: skipped
      row("http://radio.example.invalid/blank", "Blank id", "  "), // blank id: skipped
      row(null, "No url", "5"), // missing url: skipped
      row("   ", "Blank url", "6"), // blank url: skipped
      row("http://radio.example.invalid/a8", null, "8"), // no name: named by its id
    ];
    await db.sql`insert into streams ${db.sql(text, ["url", "name", ...PRODUCTION, "index"] as string[])}`;

    // Integer ids, plus the columns some deployments add (id, assigned_server, active).
    await db.sql.unsafe(`create table streams_int (id serial primary key, ${COLUMNS}, index integer, assigned_server integer, active boolean)`);
    const ints = [
      row("http://radio.example.invalid/b0", "Zero", 0, { assigned_server: 1, active: true }),
      row("http://radio.example.invalid/b3", "Three", 3, { assigned_server: 2, active: true }),
      row("http://radio.example.invalid/b4", "Four", 4, { assigned_server: null, active: false }), // inactive: not served
      row("http://radio.example.invalid/b5", "Five", 5, { assigned_server: 3, active: null }), // unknown: served
      row("http://radio.example.invalid/b12", "Twelve", 12, { assigned_server: 1, active: true }),
      row("http://radio.example.invalid/b12b", "Twelve again", 12, { assigned_server: 2, active: true }), // duplicate
      row("http://radio.example.invalid/bn", "No index", null, { assigned_server: 3, active: true }), // NULL id
    ];
    await db.sql`insert into streams_int ${db.sql(ints, ["url", "name", ...PRODUCTION, "index", "assigned_server", "active"] as string[])}`;

    // Every write to either table from now on is recorded.
    await db.sql.unsafe(`
      create table catalog_writes (tbl text, op text, at timestamptz default now());
      create function record_catalog_write() returns trigger language plpgsql as $$
        begin insert into catalog_writes (tbl, op) values (TG_TABLE_NAME, TG_OP); return null; end $$;
      create trigger w_rows after insert or update or delete on streams for each row execute function record_catalog_write();
      create trigger w_truncate after truncate on streams for each statement execute function record_catalog_write();
      create trigger w_rows after insert or update or delete on streams_int for each row execute function record_catalog_write();
      create trigger w_truncate after truncate on streams_int for each statement execute function record_catalog_write();
    `);
  });

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.close()));
    await db?.drop();
  });

  it("text ids: valid rows become streams sorted numerically then lexically; the production columns travel as metadata", async () => {
    const cat = await readCatalog(db.sql, { table: { name: "streams" }, idColumn: "index" });
    expect(cat.streams.map((s) => s.id)).toEqual(["1", "2", "7", "8", "10", "abc"]);
    const first = cat.streams[0]!;
    expect(first).toEqual({
      id: "1",
      url: "http://radio.example.invalid/a1",
      name: "Banda B FM Curitiba - PR",
      metadata: { sheet: "Radios", cidade: "Curitiba", estado: "PR", regiao: "Sul", segmento: "Jornalismo" },
    });
    for (const s of cat.streams) expect(Object.keys(s.metadata).sort()).toEqual([...PRODUCTION].sort());
    expect(cat.streams.find((s) => s.id === "2")!.url).toBe("http://radio.example.invalid/a2"); // the first row by url wins
    expect(cat.streams.find((s) => s.id === "7")!.name).toBe("Radio 7");
    expect(cat.streams.find((s) => s.id === "8")!.name).toBe("8");
    expect(cat.inactive).toBe(0); // no `active` column: every valid row is served
    expect([...cat.skipped].sort((a, b) => `${a.reason}${a.id}`.localeCompare(`${b.reason}${b.id}`))).toEqual([
      { id: "2", reason: "duplicate id" },
      { id: "5", reason: "missing url" },
      { id: "6", reason: "missing url" },
      { id: null, reason: "null id" },
      { id: null, reason: "null id" },
    ]);
  });

  it("integer ids: `active = false` is not served, NULL is; id and assigned_server are metadata like any other column", async () => {
    const cat = await readCatalog(db.sql, { table: { name: "streams_int" }, idColumn: "index" });
    expect(cat.streams.map((s) => s.id)).toEqual(["0", "3", "5", "12"]);
    expect(cat.inactive).toBe(1);
    expect(cat.skipped).toEqual(expect.arrayContaining([{ id: null, reason: "null id" }, { id: "12", reason: "duplicate id" }]));
    expect(cat.skipped).toHaveLength(2);
    const three = cat.streams.find((s) => s.id === "3")!;
    expect(three.url).toBe("http://radio.example.invalid/b3");
    expect(Object.keys(three.metadata).sort()).toEqual(["active", "assigned_server", "id", ...PRODUCTION].sort());
    expect(three.metadata).toMatchObject({ assigned_server: 2, active: true, cidade: "Curitiba", id: expect.any(Number) });
    expect(cat.streams.map((s) => presentId(s.id))).toEqual([0, 3, 5, 12]);
    expect(presentId("abc")).toBe("abc");
    expect(presentId("007")).toBe("007"); // not a plain integer: shown as written
  });

  it("a wrong id column, a missing table and an empty table are clear errors or nothing, never a crash", async () => {
    await expect(readCatalog(db.sql, { table: { name: "streams" }, idColumn: "id" })).rejects.toThrow(/no column id \(check STREAMS_ID_COLUMN\)/);
    await expect(readCatalog(db.sql, { table: { name: "no_such_streams" }, idColumn: "index" })).rejects.toThrow(CatalogError);
    await db.sql.unsafe(`create table empty_streams (${COLUMNS}, index text)`);
    expect(await readCatalog(db.sql, { table: { name: "empty_streams" }, idColumn: "index" })).toEqual({ streams: [], inactive: 0, skipped: [] });
  });

  it("STREAMS_ID_COLUMN: default id, `index` accepted, anything that is not a column name refused", () => {
    const base = { DATABASE_URL: "postgres://change-me@localhost/db" };
    expect(loadConfig(base).streamsIdColumn).toBe("id");
    expect(loadConfig({ ...base, STREAMS_ID_COLUMN: "index" }).streamsIdColumn).toBe("index");
    expect(() => loadConfig({ ...base, STREAMS_ID_COLUMN: "index; drop table streams" })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, STREAMS_ID_COLUMN: "index; drop table streams" })).toThrow(/STREAMS_ID_COLUMN/);
  });

  it("property: any rows at all give unique ids with urls, or a CatalogError naming the missing column", () => {
    const cell = fc.oneof(fc.constant(null), fc.string({ maxLength: 4 }), fc.integer({ min: -3, max: 30 }), fc.boolean());
    const rowArb = fc.record({ index: cell, url: fc.oneof(cell, fc.webUrl()), name: cell, active: cell, cidade: cell }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.array(rowArb, { maxLength: 30 }), (rows) => {
        let cat;
        try {
          cat = parseCatalogRows(rows, "index");
        } catch (err) {
          expect(err).toBeInstanceOf(CatalogError);
          expect((err as Error).message).toMatch(/no (column index|url column)/);
          return;
        }
        const ids = cat.streams.map((s) => s.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const s of cat.streams) {
          expect(s.url.trim()).not.toBe("");
          expect(s.id.trim()).toBe(s.id);
          expect(s.metadata).not.toHaveProperty("index");
          expect(s.metadata).not.toHaveProperty("url");
        }
        expect(cat.streams.length + cat.inactive + cat.skipped.length).toBe(rows.length);
      }),
      { numRuns: 300 },
    );
  });

  it("agents serve from both tables with ids shown as workers expect, and never write to them", async () => {
    const before = { text: await contents("streams"), int: await contents("streams_int") };
    const text = await startAgent({ id: "cat-text", databaseUrl: db.url, prefix: uniqueName("cat_text"), env: { STREAMS_TABLE: "streams", STREAMS_ID_COLUMN: "index", ORCHESTRATOR_SCHEMA: "orch_text" } });
    agents.push(text);
    const int = await startAgent({ id: "cat-int", databaseUrl: db.url, prefix: uniqueName("cat_int"), env: { DB_TABLE_NAME: "streams_int", STREAMS_ID_COLUMN: "index", ORCHESTRATOR_SCHEMA: "orch_int" } });
    agents.push(int);
    await waitSettled(text.app, 6, "the text-id catalog to be assigned");
    await waitSettled(int.app, 4, "the integer-id catalog to be assigned");
    for (const [a, n] of [[text, 6], [int, 4]] as const) {
      await waitFor(async () => (await call(a.app, "GET", "/v1/assignment")).body.streams.length === n, 30_000, `${a.id} to offer its streams`);
    }

    // The newer worker API and the older one show the same streams.
    const v1 = await call(text.app, "GET", "/v1/assignment");
    expect(v1.body.streams.map((s: any) => s.id).sort((a: unknown, b: unknown) => String(a).localeCompare(String(b)))).toEqual([1, 10, 2, 7, 8, "abc"]);
    const older = await call(text.app, "GET", "/api/streams/assign?worker_id=fv7-text&capacity=20");
    expect(older.body.status).toBe("assigned");
    expect(older.body.assigned_streams).toEqual([1, 2, 7, 8, 10, "abc"]);
    const abc = older.body.streams.find((s: any) => s.id === "abc");
    expect(abc).toEqual({
      stream_id: "abc",
      id: "abc",
      url: "http://radio.example.invalid/abc",
      stream_url: "http://radio.example.invalid/abc",
      name: "Radio ABC",
      metadata: { sheet: "Radios", cidade: "Curitiba", estado: "PR", regiao: "Sul", segmento: "Jornalismo" },
    });
    const olderInt = await call(int.app, "GET", "/api/streams/assign?worker_id=fv7-int&capacity=20");
    expect(olderInt.body.assigned_streams).toEqual([0, 3, 5, 12]);
    expect(olderInt.body.streams.map((s: any) => s.stream_id)).toEqual(["0", "3", "5", "12"]);
    expect(olderInt.body.streams[1].metadata).toMatchObject({ assigned_server: 2, active: true });

    // Let them run a few leader ticks and catalog refreshes, then compare.
    await new Promise((r) => setTimeout(r, 3000));
    const writes = await db.sql`select tbl, op from catalog_writes`;
    expect(writes).toEqual([]);
    expect(await contents("streams")).toBe(before.text);
    expect(await contents("streams_int")).toBe(before.int);
    // The triggers do see writes (so the empty list above means something).
    await db.sql`update streams_int set name = name where index = 3`;
    expect(await db.sql`select tbl, op from catalog_writes`).toEqual([{ tbl: "streams_int", op: "UPDATE" }]);
  });
});
