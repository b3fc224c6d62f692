/**
 * The leader's rows mirror (leader/store.ts), against a real PostgreSQL: within a term
 * the rows are read once and kept current from the leader's own writes, equal to what a
 * full read returns; a failed write or a new epoch drops the mirror; the rows version
 * changes exactly when the rows may have.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db.js";
import { migrate } from "../../shared/schema.js";
import { FencedOutError, LeaderStore } from "../../leader/store.js";
import type { RowOp } from "../../shared/placement/plan.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

function put(stream: string, owner: string, reason: "catalog" | "join" = "catalog"): RowOp {
  return { op: "put", row: { stream, owner, state: "active", next: null, revokeVersion: null, reason, url: `http://x.invalid/${stream}`, name: stream, metadata: { city: "x" } }, bump: owner, reason, from: null };
}

describe("the leader's rows mirror", () => {
  let db: TestDatabase;
  let sql: Sql;
  let store: LeaderStore;

  beforeAll(async () => {
    db = await createTestDatabase("mirror");
    sql = connect(db.url);
    await migrate(sql, "orchestrator");
    store = new LeaderStore(sql, "orchestrator");
  });

  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  const fresh = async () => [...(await new LeaderStore(sql, "orchestrator").load()).rows.values()].sort((a, b) => (a.stream < b.stream ? -1 : 1));
  const mirrored = async (epoch: number, now: number) => [...(await store.load({ epoch, now })).rows.values()].sort((a, b) => (a.stream < b.stream ? -1 : 1));

  it("keeps the rows as a full read would see them, through puts, revokes, retargets and deletes", async () => {
    const e = await store.bumpEpoch("A", await store.currentEpoch());
    await store.load({ epoch: e, now: 0 });
    const v = await store.apply(e, [put("1", "A"), put("2", "A"), put("3", "B")], new Set(["A", "B"]), new Map(), []);
    expect(await mirrored(e, 1)).toEqual(await fresh());
    await store.apply(e, [{ op: "revoke", stream: "1", owner: "A", next: "B", reason: "join" }], new Set(["A"]), new Map(), []);
    expect(v.get("A")).toBeDefined();
    expect(await mirrored(e, 2)).toEqual(await fresh());
    await store.apply(e, [{ op: "retarget", stream: "1", next: "C" }, { op: "delete", stream: "3", owner: "B", reason: "catalog" }, put("2", "C", "join")], new Set(["C"]), new Map(), []);
    const rows = await mirrored(e, 3);
    expect(rows).toEqual(await fresh());
    expect(rows.map((r) => `${r.stream}:${r.owner}:${r.state}:${r.next}`)).toEqual(["1:A:revoking:C", "2:C:active:null"]);
  });

  it("a write it did not make is seen only after a failed write, a new epoch or the periodic full read", async () => {
    const e = await store.bumpEpoch("A", await store.currentEpoch());
    await store.load({ epoch: e, now: 0 });
    // Another writer (as if a newer leader): the mirror does not see it within the term...
    await db.sql`insert into orchestrator.assignments (stream_id, instance_id, state, reason, epoch, url, name) values ('9', 'Z', 'active', 'catalog', ${e}, 'u', 'n')`;
    expect((await store.load({ epoch: e, now: 1 })).rows.has("9")).toBe(false);
    // ...but the periodic full read does,
    expect((await store.load({ epoch: e, now: 61_000 })).rows.has("9")).toBe(true);
    await db.sql`delete from orchestrator.assignments where stream_id = '9'`;
    // and so does the next read after a fenced write.
    const other = new LeaderStore(sql, "orchestrator");
    const e2 = await other.bumpEpoch("B", await other.currentEpoch());
    await expect(store.apply(e, [put("5", "A")], new Set(["A"]), new Map(), [])).rejects.toBeInstanceOf(FencedOutError);
    expect((await store.load({ epoch: e, now: 61_001 })).rows.has("9")).toBe(false);
    // A new epoch always starts with a full read; a load without an epoch never uses the mirror.
    await db.sql`insert into orchestrator.assignments (stream_id, instance_id, state, reason, epoch, url, name) values ('8', 'Z', 'active', 'catalog', ${e2}, 'u', 'n')`;
    expect((await store.load({ epoch: e2, now: 61_002 })).rows.has("8")).toBe(true);
    expect((await store.load()).rows.has("8")).toBe(true);
  });

  it("the rows version holds while the rows do, and changes with every change or full read", async () => {
    const e = await store.bumpEpoch("A", await store.currentEpoch());
    const a = await store.load({ epoch: e, now: 0 });
    const b = await store.load({ epoch: e, now: 1 });
    expect(b.rows).toBe(a.rows);
    expect(b.rowsVersion).toBe(a.rowsVersion);
    // A write with no row operation (a version bump only) leaves the rows as they were.
    await store.apply(e, [], new Set(["A"]), new Map(), []);
    expect((await store.load({ epoch: e, now: 2 })).rowsVersion).toBe(a.rowsVersion);
    await store.apply(e, [put("7", "A")], new Set(["A"]), new Map(), []);
    const c = await store.load({ epoch: e, now: 3 });
    expect(c.rowsVersion).not.toBe(a.rowsVersion);
    expect(c.rows.has("7")).toBe(true);
    // The mirror's journal names the streams each write changed since a version it knows.
    expect(c.rowsJournal!.version).toBe(c.rowsVersion);
    expect(c.rowsJournal!.changedSince(a.rowsVersion)).toEqual(["7"]);
    expect(c.rowsJournal!.changedSince(c.rowsVersion)).toEqual([]);
    expect(c.rowsJournal!.changedSince(-1)).toBeUndefined();
    // The periodic full read keeps the mirror, and its version, when it finds the same rows...
    const same = await store.load({ epoch: e, now: 61_000 });
    expect(same.rowsVersion).toBe(c.rowsVersion);
    expect(same.rows).toBe(c.rows);
    // ...and not when another writer changed one.
    await db.sql`update orchestrator.assignments set url = 'elsewhere' where stream_id = '7'`;
    const d = await store.load({ epoch: e, now: 122_000 });
    expect(d.rowsVersion).not.toBe(c.rowsVersion);
    expect(d.rowsJournal!.changedSince(c.rowsVersion)).toBeUndefined(); // new rows, a new journal
    expect(d.rows.get("7")!.url).toBe("elsewhere");
    // A read without an epoch and a new epoch: each a new version.
    const f = await store.load();
    expect(f.rowsVersion).not.toBe(d.rowsVersion);
    expect(f.rowsJournal).toBeUndefined();
    expect((await store.load()).rowsVersion).not.toBe(f.rowsVersion);
    const e2 = await store.bumpEpoch("A", await store.currentEpoch());
    expect((await store.load({ epoch: e2, now: 122_001 })).rowsVersion).not.toBe(d.rowsVersion);
  });
});
