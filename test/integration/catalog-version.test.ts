/**
 * Catalog change detection against a real PostgreSQL (shared/catalog.ts catalogVersion,
 * shared/catalog-cache.ts): any insert, update or delete changes the version; a refresh
 * with an unchanged version keeps the copy it has, a changed one reads the rows again; a
 * refresh in the background hands out the copy it has and the next read sees the change.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CatalogCache } from "../../shared/catalog-cache.js";
import { catalogVersion } from "../../shared/catalog.js";
import { ManualClock } from "../../shared/clock.js";
import { silentLogger } from "../../shared/logger.js";
import { createCatalog, createTestDatabase, type TestDatabase } from "../helpers/services.js";

describe("catalog change detection", () => {
  let db: TestDatabase;
  const src = { table: { name: "streams" }, idColumn: "id" };

  beforeAll(async () => {
    db = await createTestDatabase("catversion");
    await createCatalog(db.sql, 20);
  });

  afterAll(async () => {
    await db?.drop();
  });

  it("any insert, update or delete changes the version; nothing else does", async () => {
    const v0 = await catalogVersion(db.sql, src);
    expect(await catalogVersion(db.sql, src)).toBe(v0);
    await db.sql`update streams set name = 'renamed' where id = 3`;
    const v1 = await catalogVersion(db.sql, src);
    expect(v1).not.toBe(v0);
    await db.sql`insert into streams (url, name) values ('http://radio.example.invalid/x', 'x')`;
    const v2 = await catalogVersion(db.sql, src);
    expect(v2).not.toBe(v1);
    await db.sql`delete from streams where id = 5`;
    const v3 = await catalogVersion(db.sql, src);
    expect(v3).not.toBe(v2);
    await db.sql`select 1`;
    expect(await catalogVersion(db.sql, src)).toBe(v3);
  });

  it("a refresh reads the rows again only when the version changed", async () => {
    const clock = new ManualClock();
    const cache = new CatalogCache(db.sql, src, clock, silentLogger());
    const first = await cache.get(1000);
    await clock.advance(2000);
    // Unchanged: the same copy, refreshed.
    expect(await cache.get(1000)).toBe(first);
    await db.sql`update streams set url = 'http://radio.example.invalid/moved' where id = 2`;
    await clock.advance(2000);
    const second = await cache.get(1000);
    expect(second).not.toBe(first);
    expect(second!.streams.find((s) => s.id === "2")!.url).toBe("http://radio.example.invalid/moved");
  });

  it("a background refresh returns the copy it has at once; the next read sees the change", async () => {
    const clock = new ManualClock();
    const cache = new CatalogCache(db.sql, src, clock, silentLogger());
    // The first read is waited for, in the background or not.
    const first = await cache.get(1000, { background: true });
    expect(first).toBeDefined();
    await db.sql`update streams set name = 'in the background' where id = 4`;
    await clock.advance(2000);
    expect(await cache.get(1000, { background: true })).toBe(first);
    const next = await cache.refresh(); // the refresh started above, or one after it
    expect(next!.streams.find((s) => s.id === "4")!.name).toBe("in the background");
    expect(await cache.get(1000, { background: true })).toBe(next);
  });
});
