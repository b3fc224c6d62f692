/**
 * The second liveness channel: every agent also writes its heartbeat to PostgreSQL, and
 * deciders read it beside Redis (shared/membership.ts). One row per agent, overwritten.
 *
 * Guarantees:
 * - A write is one statement (an upsert) that either lands whole or not at all; a write
 *   of the same session with a lower seq than the row holds never lands, so a delayed
 *   write cannot roll a member's progress back.
 * - Reads return the stored heartbeats as written; a payload that does not parse is
 *   skipped (one agent's bad write must not blind the others). A reader that already
 *   decoded a member's row (same session and seq) gets the same heartbeat back without
 *   PostgreSQL sending it again; one that already parsed a member's `held` list or its
 *   stream states gets them back without PostgreSQL sending them again while they are
 *   unchanged (same digest).
 * - The same statement reads back which Redis the deciders read (the incarnation the
 *   leader recorded in `leadership.redis_incarnation`, null when none did), so an agent
 *   learns it every interval at no extra round trip (agent/heartbeat.ts), and, when asked,
 *   the heartbeats of the members a follower watches (the leader), as readSome would.
 * It does not time progress: that is dated by the reader, on its own clock. Only rows
 * written long ago (by PostgreSQL's own clock) are left out of reads.
 */
import crypto from "node:crypto";
import type { Sql } from "./db.js";
import { REPEATED, ident, num } from "./db.js";
import { decodeHeartbeat, encodeHeartbeat } from "./redis-protocol.js";
import type { Heartbeat } from "./types.js";

/**
 * Lists of at least this many streams are worth a digest (below it, PostgreSQL's md5 and
 * rewrite of the payload cost more than sending the list again).
 */
const LONG_HELD = 256;

/**
 * md5 of a held list's JSON text as PostgreSQL prints a jsonb array of strings
 * (`["a", "b"]`: ", " between elements; the escapes JSON.stringify also makes).
 */
export function heldDigest(held: readonly string[]): string {
  return crypto.createHash("md5").update(`[${held.map((s) => JSON.stringify(s)).join(", ")}]`).digest("hex");
}

/** What a heartbeat write read back. */
export interface PgHeartbeatWritten {
  /** The incarnation of the Redis the leader reads, as it recorded it; null when none is recorded. */
  readonly deciderRedis: string | null;
  /** With a `watch`: the watched members' heartbeats, as readSome would have returned them. */
  readonly watched?: StoredPgHeartbeat[];
}

function deciderRedis(inc: unknown): string | null {
  return typeof inc === "string" && inc !== "" ? inc : null;
}

export interface StoredPgHeartbeat {
  readonly id: string;
  readonly heartbeat: Heartbeat;
}

export class PgHeartbeats {
  private readonly table: string;
  private readonly leadership: string;
  /**
   * Per member with a long `held` list (LONG_HELD ids or more), the list this reader last
   * parsed and its digest: the md5 of its JSON text as PostgreSQL prints it (heldDigest).
   * While it is unchanged, that list, the largest part of a heartbeat, is neither sent nor
   * parsed again, and readers get the same array. A digest that does not match only costs
   * the whole payload: the comparison decides what is sent, never what is read.
   */
  private readonly held = new Map<string, { digest: string; held: Heartbeat["held"] }>();
  /**
   * Per member, the heartbeat this reader last decoded from its row. Until the member
   * writes again (a new session or seq), its row is neither sent nor parsed again: a
   * member writes once a HEARTBEAT_INTERVAL, a leader reads two or three times as often.
   */
  private readonly rows = new Map<string, Heartbeat>();
  /**
   * Per member whose heartbeat has stream states, the states this reader last parsed and
   * PostgreSQL's md5 of their JSON text (as it printed them: PostgreSQL computes it, and
   * sends it with the row). While it is unchanged (the states change when the worker
   * reports, every few seconds), they are neither sent nor parsed again.
   */
  private readonly states = new Map<string, { digest: string; states: Heartbeat["states"] }>();

  constructor(
    private readonly sql: Sql,
    schema: string,
  ) {
    this.table = `${ident(schema)}.heartbeats`;
    this.leadership = `${ident(schema)}.leadership`;
  }

  /**
   * Writes this agent's heartbeat and, in the same statement, reads which Redis the
   * deciders read and, with `watch`, the heartbeats of those members written within
   * `maxAgeMs` (a follower watching the leader: readSome's answer, without a round trip of
   * its own; the statement reads as of its start, so a row it writes is not among them).
   * Throws when PostgreSQL did not confirm it. The JSON goes in as text and is cast: bound
   * to a jsonb parameter, postgres.js would store it as one JSON string instead of an
   * object.
   */
  async write(hb: Heartbeat, watch?: { readonly ids: readonly string[]; readonly maxAgeMs: number }): Promise<PgHeartbeatWritten> {
    const written = `with written as (
         insert into ${this.table} (instance_id, session, seq, payload, written_at) values ($1, $2, $3, $4::text::jsonb, now())
         on conflict (instance_id) do update set session = excluded.session, seq = excluded.seq, payload = excluded.payload, written_at = now()
          where ${this.table}.session <> excluded.session or ${this.table}.seq < excluded.seq
         returning 1)`;
    const params = [hb.id, hb.session, hb.seq, encodeHeartbeat(hb)];
    if (!watch || watch.ids.length === 0) {
      const rows = await this.sql.unsafe(`${written} select redis_incarnation from ${this.leadership}`, params, REPEATED);
      return { deciderRedis: deciderRedis(rows[0]?.redis_incarnation) };
    }
    // The leadership row (no instance_id), then the watched members' rows as read() has them.
    const q = this.readQuery(params.length, watch.maxAgeMs, watch.ids);
    const rows = await this.sql.unsafe(
      `${written}
       select null::text as instance_id, null::int8 as seq, null::boolean as same_row, null::boolean as same_held, null::boolean as same_states,
              null::text as states_digest, null::text as payload, redis_incarnation from ${this.leadership}
       union all
       select r.*, null::text from (${q.text}) r`,
      [...params, ...q.params] as never[],
      REPEATED,
    );
    const lead = rows.find((r) => r.instance_id === null);
    const watched = q.decode(rows.filter((r) => r.instance_id !== null));
    this.keepOnly(new Set(watch.ids));
    return { deciderRedis: deciderRedis(lead?.redis_incarnation), watched };
  }

  /**
   * Every heartbeat written within `maxAgeMs` (by PostgreSQL's own clock, in one query).
   * Older rows are members gone for long: a tracker seeing them for the first time must
   * not take them for live members. A live member writes every HEARTBEAT_INTERVAL.
   */
  async readAll(maxAgeMs: number): Promise<StoredPgHeartbeat[]> {
    const out = await this.read(maxAgeMs);
    this.keepOnly(new Set(out.map((h) => h.id)));
    return out;
  }

  /** The heartbeats of these members written within `maxAgeMs` (a follower watching the leader). */
  async readSome(ids: readonly string[], maxAgeMs: number): Promise<StoredPgHeartbeat[]> {
    if (ids.length === 0) return [];
    const out = await this.read(maxAgeMs, ids);
    this.keepOnly(new Set(ids));
    return out;
  }

  /** Forgets what this reader kept of members other than these (a leader it no longer watches, members gone). */
  private keepOnly(ids: ReadonlySet<string>): void {
    for (const m of [this.held, this.rows, this.states]) for (const id of [...m.keys()]) if (!ids.has(id)) m.delete(id);
  }

  private async read(maxAgeMs: number, ids?: readonly string[]): Promise<StoredPgHeartbeat[]> {
    const q = this.readQuery(0, maxAgeMs, ids);
    return q.decode(await this.sql.unsafe(q.text, q.params as never[], REPEATED));
  }

  /**
   * One select of the rows written within `maxAgeMs` (of these members only, with `ids`;
   * its parameters numbered after the first `before`): each row's payload, but none at all when this reader already decoded
   * that row (the same session and seq: a write of the same session lands only with a
   * higher seq, so the row is as it was; the heartbeat decoded then comes back, the same
   * object), and with `held` emptied when this reader knows the member's long list and
   * its digest still matches (the kept list is put back; the digest is computed only for
   * those members), and without `states` when their digest, which PostgreSQL computes and
   * sends with every row it sends, matches the one it sent last (the kept states are put
   * back). Each heartbeat comes from one row as written. `decode` turns the rows into
   * heartbeats and keeps what the next read compares with.
   */
  private readQuery(
    before: number,
    maxAgeMs: number,
    ids?: readonly string[],
  ): { text: string; params: unknown[]; decode: (rows: readonly Record<string, unknown>[]) => StoredPgHeartbeat[] } {
    // The lists and rows as the statement is sent: a read finishing meanwhile may replace them.
    const known = new Map(this.held);
    const rowsKnown = new Map(this.rows);
    const statesKnown = new Map(this.states);
    const $ = (n: number) => `$${before + n}`;
    const text = `select t.instance_id, t.seq, t.same_row, t.same_held, t.same_states, t.states_digest,
              case when t.same_row then null when t.same_states then (t.base - 'states')::text else t.base::text end as payload
         from (select s.*, case when s.same_held then jsonb_set(s.payload, '{held}', '[]'::jsonb) else s.payload end as base,
                      st.digest is not null and s.states_digest = st.digest as same_states
                 from (select h.instance_id, h.seq, h.payload, r.seq is not null and r.seq = h.seq and r.session = h.session as same_row,
                              case when r.seq is not null and r.seq = h.seq and r.session = h.session then false
                                   else k.digest is not null and md5((h.payload->'held')::text) = k.digest end as same_held,
                              case when r.seq is not null and r.seq = h.seq and r.session = h.session then null
                                   else md5((h.payload->'states')::text) end as states_digest
                         from ${this.table} h
                         left join unnest(${$(2)}::text[], ${$(3)}::text[]) as k(id, digest) on k.id = h.instance_id
                         left join unnest(${$(4)}::text[], ${$(5)}::text[], ${$(6)}::int8[]) as r(id, session, seq) on r.id = h.instance_id
                        where h.written_at > now() - make_interval(secs => ${$(1)}) ${ids ? `and h.instance_id = any(${$(9)}::text[])` : ""}
                       offset 0) s
                 left join unnest(${$(7)}::text[], ${$(8)}::text[]) as st(id, digest) on st.id = s.instance_id
               offset 0) t`;
    const params: unknown[] = [
      maxAgeMs / 1000,
      [...known.keys()],
      [...known.values()].map((v) => v.digest),
      [...rowsKnown.keys()],
      [...rowsKnown.values()].map((hb) => hb.session),
      [...rowsKnown.values()].map((hb) => hb.seq),
      [...statesKnown.keys()],
      [...statesKnown.values()].map((v) => v.digest),
      ...(ids ? [ids as string[]] : []),
    ];
    return { text, params, decode: (rows) => this.decode(rows, known, rowsKnown, statesKnown) };
  }

  private decode(
    rows: readonly Record<string, unknown>[],
    known: ReadonlyMap<string, { digest: string; held: Heartbeat["held"] }>,
    rowsKnown: ReadonlyMap<string, Heartbeat>,
    statesKnown: ReadonlyMap<string, { digest: string; states: Heartbeat["states"] }>,
  ): StoredPgHeartbeat[] {
    const out: StoredPgHeartbeat[] = [];
    for (const r of rows) {
      const id = String(r.instance_id);
      if (r.same_row === true) {
        const kept = rowsKnown.get(id);
        if (kept) out.push({ id, heartbeat: kept });
        continue; // a row compared was one of `rowsKnown`
      }
      let hb = decodeHeartbeat(String(r.payload));
      if (!hb || hb.id !== id || hb.seq !== num(r.seq)) {
        this.rows.delete(id);
        continue; // skipped (see the header)
      }
      if (r.same_held === true) {
        const kept = known.get(id);
        if (!kept) continue; // cannot be: the digest compared was one of `known`
        hb = { ...hb, held: kept.held };
      } else if (hb.held.length >= LONG_HELD) this.held.set(id, { digest: heldDigest(hb.held), held: hb.held });
      else this.held.delete(id);
      if (r.same_states === true) {
        const kept = statesKnown.get(id);
        if (!kept) continue; // cannot be: the digest compared was one of `statesKnown`
        hb = { ...hb, states: kept.states };
      } else if (typeof r.states_digest === "string") this.states.set(id, { digest: r.states_digest, states: hb.states });
      else this.states.delete(id);
      this.rows.set(id, hb);
      out.push({ id, heartbeat: hb });
    }
    return out;
  }

  /** Forgets members gone for good (the leader prunes them from Redis at the same time). */
  async forget(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.sql.unsafe(`delete from ${this.table} where instance_id = any($1::text[])`, [ids as string[]]);
  }
}

