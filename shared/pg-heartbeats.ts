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
 *   PostgreSQL sending it again. Of a newer row, PostgreSQL sends only the parts whose
 *   digest (kept in the row, computed by PostgreSQL at each write: shared/schema.ts
 *   migration 7) differs from the reader's: the rest of the payload (`core`), the `held`
 *   list, the stream states; the seq and the worker's counters always. A member's steady
 *   beat (only its seq and counters new) is a few bytes, whose reading opens no payload.
 *   Parts kept come back as the same arrays and objects.
 * - The same statement reads back which Redis the deciders read (the incarnation the
 *   leader recorded in `leadership.redis_incarnation`, null when none did), so an agent
 *   learns it every interval at no extra round trip (agent/heartbeat.ts), and, when asked,
 *   the heartbeats of the members a follower watches (the leader), as readSome would.
 * It does not time progress: that is dated by the reader, on its own clock. Only rows
 * written long ago (by PostgreSQL's own clock) are left out of reads.
 */
import type { Sql } from "./db.js";
import { REPEATED, ident, num } from "./db.js";
import { encodeHeartbeat } from "./redis-protocol.js";
import { heartbeatFrom, isRecord, parseDocument as parse } from "./redis-documents.js";
import type { Heartbeat } from "./types.js";

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

/** What a reader keeps of a member's row: the heartbeat it decoded and its parts' digests. */
interface Kept {
  readonly hb: Heartbeat;
  readonly core: string;
  readonly held: string;
  readonly states: string | null;
}

export class PgHeartbeats {
  private readonly table: string;
  private readonly leadership: string;
  /**
   * Per member, the heartbeat this reader last decoded from its row and the digests of its
   * parts as PostgreSQL sent them. Until the member writes again (a new session or seq),
   * its row is not sent again: a member writes once a HEARTBEAT_INTERVAL, a leader reads
   * two or three times as often. After that, only what changed.
   */
  private readonly kept = new Map<string, Kept>();

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
       select null::text as instance_id, null::boolean as same_row, null::boolean as same_core, null::boolean as same_held, null::boolean as same_states,
              null::int8 as seq, null::boolean as seq_ok, null::text as worker, null::text as core_md5, null::text as core, null::text as held_md5,
              null::text as held, null::text as states_md5, null::text as states, redis_incarnation from ${this.leadership}
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
    for (const id of [...this.kept.keys()]) if (!ids.has(id)) this.kept.delete(id);
  }

  private async read(maxAgeMs: number, ids?: readonly string[]): Promise<StoredPgHeartbeat[]> {
    const q = this.readQuery(0, maxAgeMs, ids);
    return q.decode(await this.sql.unsafe(q.text, q.params as never[], REPEATED));
  }

  /**
   * One select of the rows written within `maxAgeMs` (of these members only, with `ids`;
   * its parameters numbered after the first `before`). Per row: nothing but its id when
   * this reader already decoded it (the same session and seq: a write of the same session
   * lands only with a higher seq, so the row is as it was; the heartbeat decoded then
   * comes back, the same object); otherwise its seq, its worker, and each part (the core,
   * `held`, `states`) only when its digest differs from the reader's (a part kept comes
   * back as the same array or object). Each heartbeat comes from one row as written.
   * `decode` turns the rows into heartbeats and keeps what the next read compares with.
   */
  private readQuery(
    before: number,
    maxAgeMs: number,
    ids?: readonly string[],
  ): { text: string; params: unknown[]; decode: (rows: readonly Record<string, unknown>[]) => StoredPgHeartbeat[] } {
    // What this reader knows as the statement is sent: a read finishing meanwhile may replace it.
    const known = new Map(this.kept);
    const $ = (n: number) => `$${before + n}`;
    const text = `select t.instance_id, t.same_row, t.same_core, t.same_held, t.same_states,
              case when t.same_row then null else t.seq end as seq,
              case when t.same_row then null else t.seq_ok end as seq_ok,
              case when t.same_row or not t.same_core then null else t.worker::text end as worker,
              case when t.same_row or t.same_core then null else t.core_md5 end as core_md5,
              case when t.same_row or t.same_core or jsonb_typeof(t.payload) <> 'object' then null else (t.payload - '{held,states}'::text[])::text end as core,
              case when t.same_row or t.same_held then null else t.held_md5 end as held_md5,
              case when t.same_row or t.same_held then null else (t.payload->'held')::text end as held,
              case when t.same_row or t.same_states then null else t.states_md5 end as states_md5,
              case when t.same_row or t.same_states then null else (t.payload->'states')::text end as states
         from (select h.instance_id, h.seq, h.payload, h.worker, h.core_md5, h.held_md5, h.states_md5,
                      h.payload_seq is not null and h.payload_seq = h.seq as seq_ok,
                      coalesce(k.session = h.session and k.seq = h.seq, false) as same_row,
                      coalesce(k.session = h.session and k.core = h.core_md5, false) as same_core,
                      coalesce(k.held = h.held_md5, false) as same_held,
                      k.id is not null and k.states is not distinct from h.states_md5 as same_states
                 from ${this.table} h
                 left join unnest(${$(2)}::text[], ${$(3)}::text[], ${$(4)}::int8[], ${$(5)}::text[], ${$(6)}::text[], ${$(7)}::text[])
                        as k(id, session, seq, core, held, states) on k.id = h.instance_id
                where h.written_at > now() - make_interval(secs => ${$(1)}) ${ids ? `and h.instance_id = any(${$(8)}::text[])` : ""}
               offset 0) t`;
    const kept = [...known.values()];
    const params: unknown[] = [
      maxAgeMs / 1000,
      [...known.keys()],
      kept.map((k) => k.hb.session),
      kept.map((k) => k.hb.seq),
      kept.map((k) => k.core),
      kept.map((k) => k.held),
      kept.map((k) => k.states),
      ...(ids ? [ids as string[]] : []),
    ];
    return { text, params, decode: (rows) => this.decode(rows, known) };
  }

  private decode(rows: readonly Record<string, unknown>[], known: ReadonlyMap<string, Kept>): StoredPgHeartbeat[] {
    const out: StoredPgHeartbeat[] = [];
    for (const r of rows) {
      const id = String(r.instance_id);
      const k = known.get(id);
      if (r.same_row === true) {
        if (k) out.push({ id, heartbeat: k.hb });
        continue; // a row compared was one of `known`
      }
      const hb = assemble(id, r, k);
      if (!hb) {
        this.kept.delete(id);
        continue; // skipped (see the header)
      }
      this.kept.set(id, {
        hb,
        core: r.same_core === true ? k!.core : String(r.core_md5),
        held: r.same_held === true ? k!.held : String(r.held_md5),
        states: r.same_states === true ? k!.states : typeof r.states_md5 === "string" ? r.states_md5 : null,
      });
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

/** The heartbeat's fields with its worker (none when the row has none, as the payload had none). */
function withWorker(fields: Record<string, unknown>, worker: unknown): Record<string, unknown> {
  if (worker === undefined) delete fields.worker;
  else fields.worker = worker;
  return fields;
}

/**
 * A member's heartbeat from a row that is not the one the reader decoded last: the parts
 * it sent, the reader's for the others (a part not sent was unchanged: `k` is the reader's
 * copy the statement compared with). Undefined when the row is not a heartbeat of `id`
 * (see the header: skipped).
 */
function assemble(id: string, r: Record<string, unknown>, k: Kept | undefined): Heartbeat | undefined {
  if (r.seq_ok !== true) return undefined;
  if ((r.same_core === true || r.same_held === true || r.same_states === true) && !k) return undefined; // cannot be: compared with `known`
  const worker = r.same_core === true ? parse(r.worker) : undefined;
  if (r.same_core === true && r.same_held === true && r.same_states === true) {
    // A steady beat: the new seq and the worker's counters on what this reader kept.
    return withWorker({ ...k!.hb, seq: num(r.seq) }, worker) as unknown as Heartbeat;
  }
  const core = r.same_core === true ? k!.hb : parse(r.core);
  const held = r.same_held === true ? k!.hb.held : parse(r.held);
  const states = r.same_states === true ? k!.hb.states : r.states === null ? undefined : parse(r.states);
  if (!isRecord(core) || core.id !== id || !Array.isArray(held)) return undefined;
  const { states: _s, worker: coreWorker, ...rest } = core as Record<string, unknown>;
  const hb = withWorker({ ...rest, seq: num(r.seq), held, ...(states === undefined ? {} : { states }) }, r.same_core === true ? worker : coreWorker);
  return heartbeatFrom(hb);
}
