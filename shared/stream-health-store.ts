/**
 * Stream health in PostgreSQL: the one module that reads and writes the stream_health,
 * stream_failures and health_samples tables (schema migration 5).
 *
 * Who writes what:
 * - each agent, its worker's outcomes (`recordOutcomes`): a success clears the current
 *   failure episode and any quarantine; a failure opens an episode on that instance (or
 *   extends it) and keeps the last error;
 * - the leader, in a transaction FENCED by its epoch (`applyHealth`): a charged failure
 *   (into the failure memory, closing the episode) and quarantines;
 * - an operator's retry (`retry`): forgets the quarantine and the failure memory.
 * Ages are computed by PostgreSQL (now() − the stored time), so every reader measures
 * them on one clock, whichever agent wrote them and whichever leader reads them.
 *
 * Does not decide anything: the rules live in shared/stream-health.ts (what a record
 * means) and shared/placement/health-rules.ts (what the leader does about it).
 */
import type { Sql, TxSql } from "./db.js";
import { PLANNED_EACH_RUN, REPEATED, ident, num, sqlWholeNumber } from "./db.js";
import type { StreamId } from "./types.js";

export interface HealthRecord {
  readonly stream: StreamId;
  /** The instance the current failure episode is on (null: no episode). */
  readonly failingOn: string | null;
  readonly failingSince: string | null;
  /** How long the episode has lasted, by PostgreSQL's clock. */
  readonly failingForMs: number | null;
  readonly lastOkAt: string | null;
  readonly lastError: string | null;
  readonly lastErrorAt: string | null;
  readonly quarantinedAt: string | null;
  readonly retryAt: string | null;
  /** Until the next quarantine retry (≤ 0: due), by PostgreSQL's clock. */
  readonly retryInMs: number | null;
  readonly retries: number;
}

/** A failure charged to a stream on an instance (the failure memory). */
export interface ChargedFailure {
  readonly instance: string;
  readonly exit: string | null;
  readonly error: string | null;
  readonly at: string;
  readonly agoMs: number;
  /** Charged after the stream's last success: it counts towards "in a row". */
  readonly sinceOk: boolean;
}

/** What decides a stream's health as operators see it (shared/stream-health.ts healthOf). */
export type HealthState = Pick<HealthRecord, "failingOn" | "quarantinedAt" | "lastOkAt">;

export interface HealthView {
  /** Streams with an open failure episode, a quarantine, or failures in memory. */
  readonly records: ReadonlyMap<StreamId, HealthRecord>;
  readonly failures: ReadonlyMap<StreamId, readonly ChargedFailure[]>;
}

export type HealthOp =
  | { readonly op: "charge"; readonly stream: StreamId; readonly instance: string; readonly exit: string | null; readonly error: string | null }
  | { readonly op: "quarantine"; readonly stream: StreamId; readonly retries: number; readonly retryInMs: number };

export interface HealthSample {
  readonly at: string;
  readonly streams: number;
  readonly served: number;
  readonly healthy: number;
}

const ERROR_MAX = 500;
const iso = (v: unknown): string | null => (v instanceof Date ? v.toISOString() : typeof v === "string" ? new Date(v).toISOString() : null);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const clip = (e: string | null | undefined): string | null => (e ? e.slice(0, ERROR_MAX) : null);

const RECORD_COLUMNS = `stream_id, failing_on, failing_since, last_ok_at, last_error, last_error_at, quarantined_at, retry_at, retries,
  extract(epoch from now() - failing_since) * 1000 as failing_ms, extract(epoch from retry_at - now()) * 1000 as retry_in_ms`;

function toRecord(r: Record<string, unknown>): HealthRecord {
  return {
    stream: r.stream_id as string,
    failingOn: (r.failing_on as string | null) ?? null,
    failingSince: iso(r.failing_since),
    failingForMs: numOrNull(r.failing_ms),
    lastOkAt: iso(r.last_ok_at),
    lastError: (r.last_error as string | null) ?? null,
    lastErrorAt: iso(r.last_error_at),
    quarantinedAt: iso(r.quarantined_at),
    retryAt: iso(r.retry_at),
    retryInMs: numOrNull(r.retry_in_ms),
    retries: num(r.retries),
  };
}

/** Failure rows (newest first) by stream, in their order. */
function groupFailures(rows: readonly Record<string, unknown>[]): Map<StreamId, ChargedFailure[]> {
  const out = new Map<StreamId, ChargedFailure[]>();
  for (const r of rows) {
    const id = r.stream_id as string;
    const list = out.get(id);
    if (list) list.push(toFailure(r));
    else out.set(id, [toFailure(r)]);
  }
  return out;
}

function toFailure(r: Record<string, unknown>): ChargedFailure {
  return {
    instance: r.instance_id as string,
    exit: (r.exit_label as string | null) ?? null,
    error: (r.error as string | null) ?? null,
    at: iso(r.at)!,
    agoMs: num(r.ago_ms),
    sinceOk: r.since_ok === true,
  };
}

export class StreamHealthStore {
  private readonly s: string;
  constructor(
    private readonly sql: Sql,
    schema: string,
  ) {
    this.s = ident(schema);
  }

  /** An agent records its worker's outcomes. `instance` is that agent's id. */
  async recordOutcomes(instance: string, ok: readonly StreamId[], failed: readonly { readonly id: StreamId; readonly error: string | null }[]): Promise<void> {
    if (ok.length > 0) {
      await this.sql.unsafe(
        `insert into ${this.s}.stream_health (stream_id, last_ok_at)
           select x, now() from unnest($1::text[]) as x
         on conflict (stream_id) do update set last_ok_at = now(), failing_on = null, failing_since = null,
           quarantined_at = null, retry_at = null, retries = 0, updated_at = now()`,
        [ok as never], REPEATED,
      );
    }
    if (failed.length > 0) {
      const list = failed.map((f) => ({ id: f.id, error: clip(f.error) ?? "failed" }));
      await this.sql.unsafe(
        `insert into ${this.s}.stream_health as h (stream_id, failing_on, failing_since, last_error, last_error_at)
           select x.id, $2, now(), x.error, now() from jsonb_to_recordset($1::jsonb) as x(id text, error text)
         on conflict (stream_id) do update set
           failing_since = case when h.failing_on = $2 then h.failing_since else now() end,
           failing_on = $2, last_error = excluded.last_error, last_error_at = now(), updated_at = now()`,
        [list as never, instance], REPEATED,
      );
    }
  }

  /** Closes every failure episode on `instance` without charging it (its worker, not its streams, failed). */
  async clearEpisodes(instance: string): Promise<void> {
    await this.sql.unsafe(`update ${this.s}.stream_health set failing_on = null, failing_since = null, updated_at = now() where failing_on = $1`, [instance]);
  }

  /**
   * What the leader plans from: open episodes, quarantines, and the failure memory, read
   * at every tick. Both reads go in one simple query (two statements, one round trip, one
   * connection, ages on one now()); planned at each run (PLANNED_EACH_RUN): the tables
   * grow from empty under the leader's ticks, and a kept plan would be the empty table's.
   */
  async readForPlan(memoryMs: number): Promise<HealthView> {
    // The union lets PostgreSQL use the partial index (stream_health_attention) and the
    // failures' index: the read costs what needs attention, not the whole table.
    const records = `select ${RECORD_COLUMNS} from ${this.s}.stream_health
        where stream_id in (select stream_id from ${this.s}.stream_health where failing_on is not null or quarantined_at is not null
                            union select stream_id from ${this.s}.stream_failures where ${this.remembered(memoryMs)})`;
    const [recs, fails] = (await this.sql.unsafe(`${records};\n${this.failuresQuery(memoryMs, false)}`, [], PLANNED_EACH_RUN)) as unknown as [Record<string, unknown>[], Record<string, unknown>[]];
    const out = new Map<StreamId, HealthRecord>();
    for (const r of recs) out.set(r.stream_id as string, toRecord(r));
    return { records: out, failures: groupFailures(fails) };
  }

  /** The failure memory's condition on `stream_failures` rows (`f` or unqualified). */
  private remembered(memoryMs: number, alias = ""): string {
    return `${alias}at > now() - ${sqlWholeNumber(memoryMs)} * interval '1 millisecond'`;
  }

  /** The remembered failures, newest first; of the stream given as $1 when `one`. */
  private failuresQuery(memoryMs: number, one: boolean): string {
    return `select f.stream_id, f.instance_id, f.exit_label, f.error, f.at, extract(epoch from now() - f.at) * 1000 as ago_ms,
              (h.last_ok_at is null or f.at > h.last_ok_at) as since_ok
         from ${this.s}.stream_failures f left join ${this.s}.stream_health h using (stream_id)
        where ${this.remembered(memoryMs, "f.")} ${one ? "and f.stream_id = $1" : ""}
        order by f.at desc, f.id desc`;
  }

  private async readFailures(sql: Sql | TxSql, memoryMs: number, stream?: StreamId): Promise<Map<StreamId, ChargedFailure[]>> {
    // Planned at each run, as readForPlan's (PLANNED_EACH_RUN: it joins stream_health).
    const rows = await sql.unsafe(this.failuresQuery(memoryMs, stream !== undefined), stream === undefined ? [] : [stream], PLANNED_EACH_RUN);
    return groupFailures(rows);
  }

  /** The leader's health changes, in one transaction that `fence` checks first (its epoch). */
  async applyHealth(ops: readonly HealthOp[], fence: (tx: TxSql) => Promise<void>): Promise<void> {
    if (ops.length === 0) return;
    await this.sql.begin(async (tx) => {
      await fence(tx);
      for (const op of ops) {
        if (op.op === "charge") {
          await tx.unsafe(`insert into ${this.s}.stream_failures (stream_id, instance_id, exit_label, error) values ($1, $2, $3, $4)`, [op.stream, op.instance, op.exit, clip(op.error)]);
          await tx.unsafe(`update ${this.s}.stream_health set failing_on = null, failing_since = null, updated_at = now() where stream_id = $1 and failing_on = $2`, [op.stream, op.instance]);
        } else {
          await tx.unsafe(
            `insert into ${this.s}.stream_health as h (stream_id, quarantined_at, retry_at, retries) values ($1, now(), now() + $2 * interval '1 millisecond', $3)
             on conflict (stream_id) do update set quarantined_at = coalesce(h.quarantined_at, now()),
               retry_at = now() + $2 * interval '1 millisecond', retries = $3, failing_on = null, failing_since = null, updated_at = now()`,
            [op.stream, op.retryInMs, op.retries],
          );
        }
      }
    });
  }

  /** An operator's retry: the quarantine and the failure memory of `stream` are forgotten. */
  async retry(stream: StreamId): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx.unsafe(`update ${this.s}.stream_health set quarantined_at = null, retry_at = null, retries = 0, failing_on = null, failing_since = null, updated_at = now() where stream_id = $1`, [stream]);
      await tx.unsafe(`delete from ${this.s}.stream_failures where stream_id = $1`, [stream]);
    });
  }

  /** One stream's record (undefined: no outcome ever) and its failures within the memory. */
  async detail(stream: StreamId, memoryMs: number): Promise<{ record: HealthRecord | undefined; failures: readonly ChargedFailure[] }> {
    const [rows, fails] = await Promise.all([
      this.sql.unsafe(`select ${RECORD_COLUMNS} from ${this.s}.stream_health where stream_id = $1`, [stream]),
      this.readFailures(this.sql, memoryMs, stream),
    ]);
    return { record: rows[0] ? toRecord(rows[0]) : undefined, failures: fails.get(stream) ?? [] };
  }

  /** Every record that says something (an outcome, an episode, a quarantine), for the status views. */
  async readAll(): Promise<Map<StreamId, HealthRecord>> {
    const rows = await this.sql.unsafe(`select ${RECORD_COLUMNS} from ${this.s}.stream_health`);
    return new Map(rows.map((r) => [r.stream_id as string, toRecord(r)]));
  }

  /**
   * Every record's state as healthOf (shared/stream-health.ts) reads it, and nothing else,
   * for the leader's figures: a light read of the whole table. The times are PostgreSQL's
   * text (their presence is what counts), not ISO strings: the latest of the records that
   * share a state, which PostgreSQL groups (a few groups: by episode holder, quarantine
   * and success) and sends as one id list each, so that the records sharing a state share
   * one object. Reading a row per record cost the leader 115–210 ms of CPU every time at
   * 100,000 streams (one message per row, three strings each).
   */
  async readStates(): Promise<Map<StreamId, HealthState>> {
    const rows = await this.sql.unsafe(
      `select failing_on, max(quarantined_at)::text as quarantined_at, max(last_ok_at)::text as last_ok_at, json_agg(stream_id)::text as ids
         from ${this.s}.stream_health group by failing_on, quarantined_at is null, last_ok_at is null`,
      [], REPEATED,
    );
    const out = new Map<StreamId, HealthState>();
    for (const r of rows) {
      const state: HealthState = { failingOn: (r.failing_on as string | null) ?? null, quarantinedAt: (r.quarantined_at as string | null) ?? null, lastOkAt: (r.last_ok_at as string | null) ?? null };
      for (const id of JSON.parse(r.ids as string) as StreamId[]) out.set(id, state);
    }
    return out;
  }

  /** Records one sample for the current minute (once; later calls within it change nothing) and prunes those over a day old. */
  async saveSample(streams: number, served: number, healthy: number): Promise<void> {
    await this.sql.unsafe(
      `insert into ${this.s}.health_samples (at, streams, served, healthy) values (date_trunc('minute', now()), $1, $2, $3) on conflict (at) do nothing`,
      [streams, served, healthy],
    );
    await this.sql.unsafe(`delete from ${this.s}.health_samples where at < now() - interval '1 day'`);
  }

  async samples(minutes: number): Promise<HealthSample[]> {
    const rows = await this.sql.unsafe(`select at, streams, served, healthy from ${this.s}.health_samples where at > now() - $1 * interval '1 minute' order by at`, [minutes]);
    return rows.map((r) => ({ at: iso(r.at)!, streams: num(r.streams), served: num(r.served), healthy: num(r.healthy) }));
  }

  /** Forgets failures older than the memory (the leader calls it now and then). */
  async pruneFailures(memoryMs: number): Promise<number> {
    const r = await this.sql.unsafe(`delete from ${this.s}.stream_failures where at < now() - $1 * interval '1 millisecond'`, [memoryMs]);
    return r.count;
  }
}
