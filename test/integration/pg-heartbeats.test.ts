/**
 * The PostgreSQL heartbeat channel's reads (shared/pg-heartbeats.ts), against a real
 * PostgreSQL: a reader gets every heartbeat as written, whether it parsed the member's
 * `held` list before (then it is not sent again, and the same array comes back) or not,
 * a row it already decoded comes back as the same heartbeat without being sent, and
 * unchanged stream states as the same object;
 * a changed list, a restarted member or another reader's cache change nothing to that;
 * of a steady beat only the seq and the worker are sent; the digests PostgreSQL keeps are
 * true whatever statement wrote the row; a heartbeat write that watches members reads
 * them in the same statement, as readSome would.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Sql } from "../../shared/db.js";
import { migrate } from "../../shared/schema.js";
import { PgHeartbeats } from "../../shared/pg-heartbeats.js";
import type { Heartbeat } from "../../shared/types.js";
import { createTestDatabase, type TestDatabase } from "../helpers/services.js";

function hb(id: string, seq: number, held: string[], o: Partial<Heartbeat> = {}): Heartbeat {
  return {
    id, seq, session: `s-${id}`, capacity: 10, draining: false, mode: "orchestrated", useOrchestrator: true, version: seq, held, leaving: false, restarting: false,
    worker: { ok: true, lastSeenMsAgo: 0, processed: seq, errors: 0, kind: "v1" }, startedAt: "2020-01-01T00:00:00.000Z", host: "h", location: "l", software: "1", ...o,
  };
}
/** A long list (kept by digest, as every list now is). */
const long = (from: number, n = 300) => Array.from({ length: n }, (_, i) => String(from + i));
const byId = (list: { id: string; heartbeat: Heartbeat }[]) => new Map(list.map((x) => [x.id, x.heartbeat]));

describe("PostgreSQL heartbeat reads", () => {
  let db: TestDatabase;
  let sql: Sql;

  beforeAll(async () => {
    db = await createTestDatabase("pghb");
    sql = connect(db.url);
    await migrate(sql, "orchestrator");
  });

  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  it("returns each heartbeat as written, sending an unchanged held list once", async () => {
    const writer = new PgHeartbeats(sql, "orchestrator");
    const reader = new PgHeartbeats(sql, "orchestrator");
    const list = long(1);
    await writer.write(hb("a", 1, list));
    await writer.write(hb("b", 1, ["4"]));
    const first = byId(await reader.readAll(60_000));
    expect(first.get("a")).toEqual(hb("a", 1, list));
    // Next beat: the same list (not sent again: the same array), the rest as written.
    await writer.write(hb("a", 2, list, { draining: true }));
    const second = byId(await reader.readAll(60_000));
    expect(second.get("a")).toEqual(hb("a", 2, list, { draining: true }));
    expect(second.get("a")!.held).toBe(first.get("a")!.held);
    // A short list is read whole every time (no digest): still as written.
    await writer.write(hb("b", 2, ["4"]));
    expect(byId(await reader.readAll(60_000)).get("b")).toEqual(hb("b", 2, ["4"]));
    // A changed list, a short one, and a list that comes back to an earlier value: as written.
    await writer.write(hb("a", 3, long(2)));
    expect(byId(await reader.readAll(60_000)).get("a")).toEqual(hb("a", 3, long(2)));
    await writer.write(hb("a", 4, ["1", "3"]));
    expect(byId(await reader.readAll(60_000)).get("a")).toEqual(hb("a", 4, ["1", "3"]));
    await writer.write(hb("a", 5, list));
    expect(byId(await reader.readAll(60_000)).get("a")).toEqual(hb("a", 5, list));
    await writer.write(hb("a", 6, long(2)));
    expect(byId(await reader.readAll(60_000)).get("a")).toEqual(hb("a", 6, long(2)));
    // An emptied list, a restart (new session, seq from 1) with the same list.
    await writer.write(hb("b", 3, []));
    expect(byId(await reader.readAll(60_000)).get("b")).toEqual(hb("b", 3, []));
    await writer.write(hb("b", 1, [], { session: "s-b2" }));
    expect(byId(await reader.readAll(60_000)).get("b")).toEqual(hb("b", 1, [], { session: "s-b2" }));
    // A follower's read of one member, and a fresh reader: the same heartbeats.
    expect(await reader.readSome(["a"], 60_000)).toEqual([{ id: "a", heartbeat: hb("a", 6, long(2)) }]);
    expect(byId(await new PgHeartbeats(sql, "orchestrator").readAll(60_000))).toEqual(byId(await reader.readAll(60_000)));
  });

  it("sends a row this reader already decoded (same session and seq) no more: the same heartbeat comes back", async () => {
    const writer = new PgHeartbeats(sql, "orchestrator");
    const reader = new PgHeartbeats(sql, "orchestrator");
    await writer.write(hb("d", 1, ["5"]));
    const first = byId(await reader.readAll(60_000)).get("d")!;
    const again = byId(await reader.readAll(60_000)).get("d")!;
    expect(again).toBe(first);
    expect((await reader.readSome(["d"], 60_000))[0]!.heartbeat).toBe(first);
    // A new beat, and a restart that starts its seq over: read as written.
    await writer.write(hb("d", 2, ["5"], { draining: true }));
    expect(byId(await reader.readAll(60_000)).get("d")).toEqual(hb("d", 2, ["5"], { draining: true }));
    await writer.write(hb("d", 2, ["6"], { session: "s-d2" }));
    expect(byId(await reader.readAll(60_000)).get("d")).toEqual(hb("d", 2, ["6"], { session: "s-d2" }));
  });

  it("a write that watches members reads them in the same statement, as readSome does, and the deciders' Redis", async () => {
    const leader = new PgHeartbeats(sql, "orchestrator");
    const follower = new PgHeartbeats(sql, "orchestrator");
    const reader = new PgHeartbeats(sql, "orchestrator");
    await sql`update orchestrator.leadership set redis_incarnation = 'inc-w'`;
    await leader.write(hb("lw", 1, long(1)));
    const watch = { ids: ["lw", "gone-w"], maxAgeMs: 60_000 };
    const first = await follower.write(hb("fw", 1, ["1"]), watch);
    expect(first.deciderRedis).toBe("inc-w");
    expect(first.watched).toEqual(await reader.readSome(watch.ids, 60_000));
    expect(byId(first.watched!).get("lw")).toEqual(hb("lw", 1, long(1)));
    // Unchanged: the same heartbeat comes back; a new beat, with its long list kept by digest, as written.
    const again = await follower.write(hb("fw", 2, ["1"]), watch);
    expect(again.watched![0]!.heartbeat).toBe(first.watched![0]!.heartbeat);
    await leader.write(hb("lw", 2, long(1), { draining: true }));
    const next = await follower.write(hb("fw", 3, ["1"]), watch);
    expect(next.watched).toEqual([{ id: "lw", heartbeat: hb("lw", 2, long(1), { draining: true }) }]);
    expect(next.watched![0]!.heartbeat.held).toBe(first.watched![0]!.heartbeat.held);
    // The write itself landed, and a write without a watch reads nobody.
    expect(byId(await reader.readAll(60_000)).get("fw")).toEqual(hb("fw", 3, ["1"]));
    expect((await follower.write(hb("fw", 4, ["1"]))).watched).toBeUndefined();
    await sql`update orchestrator.leadership set redis_incarnation = null`;
  });

  it("sends unchanged stream states once: the same object comes back, changed ones as written", async () => {
    const writer = new PgHeartbeats(sql, "orchestrator");
    const reader = new PgHeartbeats(sql, "orchestrator");
    const states = (e: string) => ({ "1": { s: "ok" }, "2": { s: "failed", e }, x: { s: "processing" } });
    await writer.write(hb("e", 1, ["1", "2"], { states: states("403") }));
    const first = byId(await reader.readAll(60_000)).get("e")!;
    expect(first).toEqual(hb("e", 1, ["1", "2"], { states: states("403") }));
    await writer.write(hb("e", 2, ["1", "2"], { states: states("403"), draining: true }));
    const second = byId(await reader.readAll(60_000)).get("e")!;
    expect(second).toEqual(hb("e", 2, ["1", "2"], { states: states("403"), draining: true }));
    expect(second.states).toBe(first.states);
    await writer.write(hb("e", 3, ["1", "2"], { states: states("404") }));
    expect(byId(await reader.readAll(60_000)).get("e")).toEqual(hb("e", 3, ["1", "2"], { states: states("404") }));
    await writer.write(hb("e", 4, ["1", "2"]));
    expect(byId(await reader.readAll(60_000)).get("e")).toEqual(hb("e", 4, ["1", "2"]));
    await writer.write(hb("e", 5, ["1", "2"], { states: states("404") }));
    expect((await reader.readSome(["e"], 60_000))[0]!.heartbeat).toEqual(hb("e", 5, ["1", "2"], { states: states("404") }));
  });

  it("skips a payload that does not parse as a heartbeat, and reads the others", async () => {
    const writer = new PgHeartbeats(sql, "orchestrator");
    const reader = new PgHeartbeats(sql, "orchestrator");
    await writer.write(hb("c", 1, ["9"]));
    await reader.readAll(60_000);
    await sql.unsafe(`update orchestrator.heartbeats set payload = '{"id": "c", "seq": 2}'::jsonb, seq = 2 where instance_id = 'c'`);
    const read = byId(await reader.readAll(60_000));
    expect(read.has("c")).toBe(false);
    expect(read.get("a")?.id).toBe("a");
    // Payloads that are no object at all, or whose worker is not one, are stored (their
    // digests cannot fail a write) and skipped alike.
    for (const [n, payload] of [[3, "3"], [4, '["c", 4]'], [5, '{"id": "c", "seq": 5, "held": [], "worker": [1, 2]}'], [6, "null"]] as const) {
      await sql.unsafe(`update orchestrator.heartbeats set payload = $1::text::jsonb, seq = $2 where instance_id = 'c'`, [payload, n]);
      const again = byId(await reader.readAll(60_000));
      expect(again.has("c") ? again.get("c")!.worker : "skipped").toEqual(n === 5 ? [1, 2] : "skipped");
      expect(again.get("a")?.id).toBe("a");
    }
  });

  it("of a steady beat (only its seq and the worker's counters new) sends the seq and the worker alone: the rest comes back as kept", async () => {
    const seen: Record<string, unknown>[] = [];
    // The reader's statements answered by the real PostgreSQL; what it sent back recorded.
    const recording = {
      unsafe: async (...args: Parameters<Sql["unsafe"]>) => {
        const rows = await sql.unsafe(...args);
        seen.push(...(rows as unknown as Record<string, unknown>[]));
        return rows;
      },
    } as unknown as Sql;
    const writer = new PgHeartbeats(sql, "orchestrator");
    const reader = new PgHeartbeats(recording, "orchestrator");
    const states = { "1": { s: "ok" }, "2": { s: "failed", e: "403" } };
    const beat = (seq: number, o: Partial<Heartbeat> = {}) =>
      hb("g", seq, long(1), { version: 1, states, worker: { ok: true, lastSeenMsAgo: seq * 10, processed: seq * 3, errors: seq, kind: "v1" }, ...o });
    await writer.write(beat(1));
    const first = (await reader.readSome(["g"], 60_000))[0]!.heartbeat;
    expect(first).toEqual(beat(1));
    seen.length = 0;
    await writer.write(beat(2));
    const second = (await reader.readSome(["g"], 60_000))[0]!.heartbeat;
    expect(second).toEqual(beat(2));
    expect(second.held).toBe(first.held);
    expect(second.states).toBe(first.states);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ same_row: false, same_core: true, same_held: true, same_states: true, core: null, held: null, states: null });
    expect(JSON.parse(String(seen[0]!.worker))).toEqual(beat(2).worker);
    // The core changes (draining): the core is sent, the list and the states are not.
    seen.length = 0;
    await writer.write(beat(3, { draining: true }));
    const third = (await reader.readSome(["g"], 60_000))[0]!.heartbeat;
    expect(third).toEqual(beat(3, { draining: true }));
    expect(third.held).toBe(first.held);
    expect(seen[0]).toMatchObject({ same_core: false, same_held: true, same_states: true, held: null, states: null });
    // The worker's state (not a counter) is the core's too; the states go away: as written.
    await writer.write(beat(4, { draining: true, worker: { ok: false, lastSeenMsAgo: null, processed: 0, errors: 0, kind: "none" }, states: undefined }));
    expect((await reader.readSome(["g"], 60_000))[0]!.heartbeat).toEqual(beat(4, { draining: true, worker: { ok: false, lastSeenMsAgo: null, processed: 0, errors: 0, kind: "none" }, states: undefined }));
    // A restart (a new session) with the very same parts: as written, under its own session.
    await writer.write(beat(1, { draining: true, session: "s-g2", worker: { ok: false, lastSeenMsAgo: null, processed: 0, errors: 0, kind: "none" }, states: undefined }));
    expect((await reader.readSome(["g"], 60_000))[0]!.heartbeat).toEqual(beat(1, { draining: true, session: "s-g2", worker: { ok: false, lastSeenMsAgo: null, processed: 0, errors: 0, kind: "none" }, states: undefined }));
  });

  it("keeps its digests true for a row written by any statement (an older agent's write, an operator's update)", async () => {
    const writer = new PgHeartbeats(sql, "orchestrator");
    const reader = new PgHeartbeats(sql, "orchestrator");
    await writer.write(hb("o", 1, long(1), { version: 1 }));
    await reader.readSome(["o"], 60_000);
    // The same seq's row rewritten by hand with another list and another core, its seq moved on.
    const other = hb("o", 2, long(5), { version: 1, draining: true });
    await sql.unsafe(`update orchestrator.heartbeats set seq = 2, payload = $1::text::jsonb where instance_id = 'o'`, [JSON.stringify(other)]);
    expect((await reader.readSome(["o"], 60_000))[0]!.heartbeat).toEqual(other);
    // A payload whose seq is not the row's is no heartbeat of it: skipped, then read again once it is.
    await sql.unsafe(`update orchestrator.heartbeats set seq = 3 where instance_id = 'o'`);
    expect(await reader.readSome(["o"], 60_000)).toEqual([]);
    await writer.write(hb("o", 4, long(5), { version: 1, draining: true }));
    expect((await reader.readSome(["o"], 60_000))[0]!.heartbeat).toEqual(hb("o", 4, long(5), { version: 1, draining: true }));
  });
});
