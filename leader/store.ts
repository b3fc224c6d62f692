/**
 * The leader's writes, all FENCED by the epoch.
 *
 * Safety rule: every transaction that changes assignments first reads
 * `leadership.epoch ... FOR SHARE` and aborts with FencedOutError unless it equals the
 * epoch this leader won. A new leader's epoch bump (an UPDATE of that row) waits for
 * such a transaction to finish, and every later one sees the new epoch: so a deposed
 * leader's write either committed before the new leader existed, or never lands. The
 * bump itself is a compare-and-set against the epoch the new leader read after winning
 * the lease, so a bump that lands late cannot take the epoch back from a successor.
 *
 * The rows mirror: within one term (`load({ epoch })`), the assignment rows are read once
 * and then kept current from this leader's own committed writes (apply), so a steady
 * tick reads only the instances and the flag. Only the leader writes assignment rows, and
 * another leader's writes fence this one's out, so the mirror can be stale only once this
 * term is over, when its writes no longer land. It is dropped on any failed write, on a
 * new epoch, and re-read in full every MIRROR_FULL_READ_MS as a safety net. Readers
 * without an epoch (the dry run on any agent) always read in full. Each state carries a
 * rows version that changes whenever the rows may have (leader/memo.ts reuses what it
 * computed from unchanged rows); a periodic full read that finds the mirror's rows keeps
 * the mirror and its version. The mirror also keeps a journal of the streams each apply
 * changed (the last MIRROR_JOURNAL applies), so the plan updates what it derives from the
 * rows instead of deriving it again (shared/placement/rows-index.ts).
 *
 * A write sends its rows in statements of at most WRITE_BATCH rows each (one transaction
 * still: all land or none), reports each statement completed (`progress`: a cold start's
 * 75,000 moves on a busy PostgreSQL are slow, not stalled: leader/stall.ts), and sends no
 * further statement once its `signal` says the term ended: the transaction rolls back and
 * no longer holds the leadership row the successor's epoch bump waits for (once the
 * statement in flight has ended; a cut-off one, after idle_in_transaction_session_timeout).
 * So a slow but answering PostgreSQL can keep one large write going past the stall limit,
 * which applies per statement.
 */
import type { Sql, TxSql } from "../shared/db.js";
import { PLANNED_EACH_RUN, REPEATED, ident, num } from "../shared/db.js";
import { isMoveReason, type EventKind, type InstanceStatus, type MoveReason, type StreamId } from "../shared/types.js";
import type { InstanceRow, Row, RowOp } from "../shared/placement/plan.js";
import { RowsLog, type RowsJournal } from "../shared/placement/rows-index.js";
import { sameMetadata } from "../shared/placement/catalog-index.js";

/** Rows per statement of a write (see the header). */
export const WRITE_BATCH = 10_000;

/** What a write reports while it runs, and what stops it (see the header). */
export interface WriteOptions {
  /** Called after each statement of the transaction completed. */
  readonly progress?: () => void;
  /** Aborted: no further statement is sent, and the transaction rolls back. */
  readonly signal?: AbortSignal;
}

/** `rows` in slices of at most WRITE_BATCH. */
function batches<T>(rows: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += WRITE_BATCH) out.push(rows.slice(i, i + WRITE_BATCH));
  return out;
}

export class FencedOutError extends Error {
  override readonly name = "FencedOutError";
  constructor(
    readonly mine: number,
    readonly current: number,
  ) {
    super(`epoch ${mine} is no longer current (now ${current}): another leader took over`);
  }
}

/** A bump found the epoch moved off the one its leader read: nothing changed; read again. */
export class EpochMovedError extends Error {
  override readonly name = "EpochMovedError";
  constructor(readonly seen: number) {
    super(`the fencing epoch moved off ${seen} before this leader's bump: read it again`);
  }
}

export interface LeaderState {
  readonly rows: Map<StreamId, Row>;
  /**
   * Names what `rows` holds: a new value whenever it may differ (each full read, each
   * change the mirror takes from an apply), the same while it is unchanged. Unique within
   * the process, so equal versions mean the same rows.
   */
  readonly rowsVersion: number;
  /** The streams whose rows changed since an earlier version (rows from the mirror only). */
  readonly rowsJournal?: RowsJournal;
  readonly instances: Map<string, InstanceRow>;
  readonly flag: { mode: "orchestrated" | "hashed"; version: number };
}

export interface EventRow {
  readonly kind: EventKind;
  readonly stream_id?: string | null;
  readonly from_instance?: string | null;
  readonly to_instance?: string | null;
  readonly reason?: MoveReason | null;
  readonly detail?: unknown;
}

/** The rows mirror is re-read in full at least this often. */
const MIRROR_FULL_READ_MS = 60_000;

/** The last rows version handed out (LeaderState.rowsVersion), process-wide. */
let rowsVersions = 0;

export class LeaderStore {
  /** The schema, quoted: for the bulk writes, whose SQL is text with numbered parameters. */
  private readonly s: string;
  /** The rows as this term's leader last wrote them (see the header). */
  private mirror: { epoch: number; rows: Map<StreamId, Row>; readAt: number; version: number; journal: RowsLog } | undefined;
  constructor(
    readonly sql: Sql,
    private readonly schema: string,
  ) {
    this.s = ident(schema);
  }

  /** A table of the orchestrator schema, as an identifier for tagged queries. */
  private table(sql: Sql | TxSql, name: string) {
    return sql(`${this.schema}.${name}`);
  }

  /** The fencing epoch as PostgreSQL holds it now: what a new leader reads before its bump. */
  async currentEpoch(): Promise<number> {
    const rows = await this.sql.unsafe(`select epoch from ${this.s}.leadership`, [], REPEATED);
    return num(rows[0]!.epoch);
  }

  /**
   * Called on winning the lease: the new fencing epoch, `seen` + 1, where `seen` is the
   * epoch this leader read after winning the lease (currentEpoch). The bump is a
   * compare-and-set: when the epoch is no longer `seen` (someone bumped since), it changes
   * nothing and throws EpochMovedError, and the caller reads again and retries while it
   * still holds the lease by its own clock. So a bump that lands late (sent by a leader
   * that has since lost the lease or stepped aside, held up behind a lock or on a cut
   * link) cannot take the epoch from a successor that won it after: the successor's bump
   * moved the epoch off the late one's `seen`.
   */
  async bumpEpoch(leaderId: string, seen: number): Promise<number> {
    return this.sql.begin(async (tx) => {
      const rows = await tx`update ${this.table(tx, "leadership")} set epoch = epoch + 1, leader_id = ${leaderId}, elected_at = now() where epoch = ${seen} returning epoch`;
      if (rows.length === 0) throw new EpochMovedError(seen);
      const epoch = num(rows[0]!.epoch);
      await tx`insert into ${this.table(tx, "events")} (kind, to_instance, epoch, reason) values ('leader', ${leaderId}, ${epoch}, 'elected')`;
      return epoch;
    });
  }

  /**
   * Records which Redis this leader reads members from (its incarnation), fenced by the
   * epoch in the statement itself: a deposed leader's write matches no row.
   */
  async recordRedis(epoch: number, incarnation: string): Promise<void> {
    await this.sql.unsafe(`update ${this.s}.leadership set redis_incarnation = $2 where epoch = $1 and redis_incarnation is distinct from $2`, [epoch, incarnation], REPEATED);
  }

  /**
   * The rows, the instances and the flag. With `term` (the leader's own ticks: its epoch
   * and the time on its clock) the rows come from the mirror once read in this term; the
   * returned rows are valid until the next apply(), which updates them in place.
   */
  async load(term?: { readonly epoch: number; readonly now: number }): Promise<LeaderState> {
    const m = this.mirror;
    const reuse = term !== undefined && m !== undefined && m.epoch === term.epoch && term.now - m.readAt < MIRROR_FULL_READ_MS;
    // The instances and the flag, read at every tick, in one round trip (two statements of
    // one simple query, no parameter: nothing to prepare); the rows, when read, beside it.
    const [rows, [inst, flag]] = await Promise.all([
      reuse ? Promise.resolve(undefined) : this.sql`select stream_id, instance_id, state, next_instance, revoke_version, reason, url, name, metadata from ${this.table(this.sql, "assignments")}`,
      this.sql.unsafe(`select id, draining, version, epoch, status from ${this.s}.instances;\nselect mode, mode_version from ${this.s}.cluster`, [], PLANNED_EACH_RUN) as unknown as Promise<[Record<string, unknown>[], Record<string, unknown>[]]>,
    ]);
    let current: Map<StreamId, Row>;
    let version: number;
    let journal: RowsLog | undefined;
    if (rows === undefined) {
      current = m!.rows;
      version = m!.version;
      journal = m!.journal;
    } else {
      current = new Map(
        rows.map((r) => [
          r.stream_id as string,
          {
            stream: r.stream_id as string,
            owner: r.instance_id as string,
            state: r.state as "active" | "revoking",
            next: (r.next_instance as string | null) ?? null,
            revokeVersion: r.revoke_version === null ? null : num(r.revoke_version),
            reason: storedReason(r.reason as string),
            url: r.url as string,
            name: r.name as string,
            metadata: (r.metadata as Record<string, unknown>) ?? {},
          },
        ]),
      );
      if (term !== undefined && m !== undefined && m.epoch === term.epoch && sameRows(m.rows, current)) {
        // The periodic full read found what the mirror holds: keep it, and its version.
        current = m.rows;
        version = m.version;
        journal = m.journal;
      } else version = ++rowsVersions;
      if (term !== undefined) journal ??= new RowsLog();
      this.mirror = term === undefined ? undefined : { epoch: term.epoch, rows: current, readAt: term.now, version, journal: journal! };
    }
    return {
      rows: current,
      rowsVersion: version,
      rowsJournal: journal?.as(version),
      instances: new Map(
        inst.map((r) => [
          r.id as string,
          { id: r.id as string, draining: r.draining === true, version: num(r.version), epoch: num(r.epoch), status: r.status as string },
        ]),
      ),
      flag: { mode: flag[0]!.mode as "orchestrated" | "hashed", version: num(flag[0]!.mode_version) },
    };
  }

  /** Brings the mirror to what a committed apply() wrote (the same values load() would read). */
  private mirrorApplied(epoch: number, ops: readonly RowOp[], versions: ReadonlyMap<string, number>): void {
    const m = this.mirror;
    if (!m || m.epoch !== epoch) {
      this.mirror = undefined;
      return;
    }
    if (ops.length > 0) {
      const before = m.version;
      m.version = ++rowsVersions;
      m.journal.record(before, m.version, ops.map((op) => (op.op === "put" ? op.row.stream : op.stream)));
    }
    for (const op of ops) {
      if (op.op === "put") {
        const r = op.row;
        m.rows.set(r.stream, { stream: r.stream, owner: r.owner, state: "active", next: null, revokeVersion: null, reason: r.reason, url: r.url, name: r.name, metadata: r.metadata ?? {} });
      } else if (op.op === "delete") m.rows.delete(op.stream);
      else {
        const cur = m.rows.get(op.stream);
        if (!cur) {
          // A row this mirror does not have: it is out of step, read everything again.
          this.mirror = undefined;
          return;
        }
        if (op.op === "revoke") m.rows.set(op.stream, { ...cur, state: "revoking", next: op.next, reason: op.reason, revokeVersion: versions.get(op.owner) ?? null });
        else m.rows.set(op.stream, { ...cur, next: op.next });
      }
    }
  }

  /**
   * Applies one tick's changes in one fenced transaction. Returns the new assignment
   * version of every bumped member.
   */
  async apply(
    epoch: number,
    ops: readonly RowOp[],
    bump: ReadonlySet<string>,
    statuses: ReadonlyMap<string, InstanceStatus>,
    events: readonly EventRow[],
    sessions: ReadonlyMap<string, string> = new Map(),
    o: WriteOptions = {},
  ): Promise<Map<string, number>> {
    let versions: Map<string, number>;
    try {
      versions = await this.write(epoch, ops, bump, statuses, events, sessions, o);
    } catch (err) {
      // Committed or not, the mirror cannot tell: read everything next time.
      this.mirror = undefined;
      throw err;
    }
    this.mirrorApplied(epoch, ops, versions);
    return versions;
  }

  private write(
    epoch: number,
    ops: readonly RowOp[],
    bump: ReadonlySet<string>,
    statuses: ReadonlyMap<string, InstanceStatus>,
    events: readonly EventRow[],
    sessions: ReadonlyMap<string, string>,
    o: WriteOptions,
  ): Promise<Map<string, number>> {
    return this.sql.begin(async (tx) => {
      // Each statement of this transaction: sent only while the term lasts, reported once done.
      const step = async <T>(run: () => Promise<T>): Promise<T> => {
        o.signal?.throwIfAborted();
        const r = await run();
        o.progress?.();
        return r;
      };
      await step(() => this.checkEpoch(tx, epoch));
      const versions = new Map<string, number>();
      if (bump.size > 0) {
        const list = [...bump].map((id) => ({ id, session: sessions.get(id) ?? null }));
        const bumped = await step(() => tx.unsafe(
          `insert into ${this.s}.instances (id, version, epoch, stamped_session)
             select x.id, 1, $2, x.session from jsonb_to_recordset($1::jsonb) as x(id text, session text)
           on conflict (id) do update set version = ${this.s}.instances.version + 1, epoch = $2,
             stamped_session = coalesce(excluded.stamped_session, ${this.s}.instances.stamped_session)
           returning id, version`,
          [list as never, epoch], REPEATED,
        ));
        for (const r of bumped) versions.set(r.id as string, num(r.version));
      }
      const puts: Record<string, unknown>[] = [];
      const deletes: string[] = [];
      const revokes: Record<string, unknown>[] = [];
      const retargets: Record<string, unknown>[] = [];
      for (const op of ops) {
        if (op.op === "put") {
          const r = op.row;
          puts.push({ stream_id: r.stream, instance_id: r.owner, reason: r.reason, url: r.url, name: r.name, metadata: r.metadata });
        } else if (op.op === "delete") {
          deletes.push(op.stream);
        } else if (op.op === "revoke") {
          revokes.push({ stream_id: op.stream, next_instance: op.next, reason: op.reason, revoke_version: versions.get(op.owner) ?? null });
        } else {
          retargets.push({ stream_id: op.stream, next_instance: op.next });
        }
      }
      for (const batch of batches(puts)) {
        await step(() => tx.unsafe(
          `insert into ${this.s}.assignments (stream_id, instance_id, state, next_instance, revoke_version, reason, epoch, url, name, metadata, assigned_at, updated_at)
             select x.stream_id, x.instance_id, 'active', null, null, x.reason, $2, x.url, x.name, coalesce(x.metadata, '{}'::jsonb), now(), now()
               from jsonb_to_recordset($1::jsonb) as x(stream_id text, instance_id text, reason text, url text, name text, metadata jsonb)
           on conflict (stream_id) do update set
             instance_id = excluded.instance_id, state = 'active', next_instance = null, revoke_version = null,
             reason = excluded.reason, epoch = excluded.epoch, url = excluded.url, name = excluded.name, metadata = excluded.metadata,
             assigned_at = case when ${this.s}.assignments.instance_id = excluded.instance_id then ${this.s}.assignments.assigned_at else now() end,
             updated_at = now()`,
          [batch as never, epoch], REPEATED,
        ));
      }
      for (const batch of batches(revokes)) {
        await step(() => tx.unsafe(
          `update ${this.s}.assignments a set state = 'revoking', next_instance = x.next_instance, revoke_version = x.revoke_version,
                  reason = x.reason, epoch = $2, updated_at = now()
             from jsonb_to_recordset($1::jsonb) as x(stream_id text, next_instance text, reason text, revoke_version bigint)
            where a.stream_id = x.stream_id`,
          [batch as never, epoch], REPEATED,
        ));
      }
      for (const batch of batches(retargets)) {
        await step(() => tx.unsafe(
          `update ${this.s}.assignments a set next_instance = x.next_instance, epoch = $2, updated_at = now()
             from jsonb_to_recordset($1::jsonb) as x(stream_id text, next_instance text)
            where a.stream_id = x.stream_id`,
          [batch as never, epoch], REPEATED,
        ));
      }
      for (const batch of batches(deletes)) {
        await step(() => tx`delete from ${this.table(tx, "assignments")} where stream_id = any(${batch}::text[])`);
      }
      if (statuses.size > 0) {
        const list = [...statuses].map(([id, status]) => ({ id, status }));
        await step(() => tx.unsafe(
          `insert into ${this.s}.instances (id, status, removed_at)
             select x.id, x.status, case when x.status = 'removed' then now() end from jsonb_to_recordset($1::jsonb) as x(id text, status text)
           on conflict (id) do update set status = excluded.status,
             removed_at = case when excluded.status = 'removed' then now() else null end`,
          [list as never], REPEATED,
        ));
      }
      for (const batch of batches(events)) {
        await step(() => tx.unsafe(
          `insert into ${this.s}.events (kind, stream_id, from_instance, to_instance, reason, epoch, detail)
             select x.kind, x.stream_id, x.from_instance, x.to_instance, x.reason, $2, x.detail
               from jsonb_to_recordset($1::jsonb) as x(kind text, stream_id text, from_instance text, to_instance text, reason text, detail jsonb)`,
          [batch as never, epoch], REPEATED,
        ));
      }
      return versions;
    });
  }

  /** Persists heartbeat figures for /instances (not safety-relevant; fenced anyway). */
  async saveStats(epoch: number, stats: readonly { id: string; processed: number; errors: number; capacity: number }[]): Promise<void> {
    if (stats.length === 0) return;
    await this.sql.begin(async (tx) => {
      await this.checkEpoch(tx, epoch);
      await tx.unsafe(
        `update ${this.s}.instances i set processed_total = greatest(i.processed_total, x.processed), errors_total = greatest(i.errors_total, x.errors),
                capacity = x.capacity, last_seen = now()
           from jsonb_to_recordset($1::jsonb) as x(id text, processed bigint, errors bigint, capacity integer)
          where i.id = x.id`,
        [stats as never], REPEATED,
      );
    });
  }

  /**
   * Milliseconds since the last rebalance of live members any leader decided (a revoke
   * for join, imbalance, capacity or an operator), by the database's clock; null if none.
   * A new leader starts its cooldown from it, so a leader change does not reset the calm.
   */
  async lastRebalanceAgoMs(): Promise<number | null> {
    const rows = await this.sql`
      select (extract(epoch from (now() - max(at))) * 1000)::float8 as ago from ${this.table(this.sql, "events")}
       where kind = 'revoke' and reason in ('join', 'imbalance', 'capacity', 'manual')`;
    const ago = rows[0]?.ago;
    return ago === null || ago === undefined ? null : Math.max(0, Number(ago));
  }

  /** Deletes events older than the retention. Returns how many went. */
  async pruneEvents(retentionMs: number): Promise<number> {
    const rows = await this.sql`delete from ${this.table(this.sql, "events")} where at < now() - make_interval(secs => ${retentionMs / 1000}) returning 1`;
    return rows.length;
  }

  /** The fence: throws FencedOutError unless `epoch` is current (holds the row FOR SHARE until commit). */
  async checkEpoch(tx: TxSql, epoch: number): Promise<void> {
    const rows = await tx`select epoch from ${this.table(tx, "leadership")} for share`;
    const current = num(rows[0]!.epoch);
    if (current !== epoch) throw new FencedOutError(epoch, current);
  }
}

/**
 * The reason of a stored row. apply() alone writes the column, and only MoveReason values;
 * a value this build does not know (a newer build's, during a rolling upgrade) reads as
 * "catalog". It only labels the move that completes the row's handoff.
 */
function storedReason(raw: string): MoveReason {
  return isMoveReason(raw) ? raw : "catalog";
}

/** The same rows, as plan.ts tells rows apart (metadata by its JSON text). */
function sameRows(a: ReadonlyMap<StreamId, Row>, b: ReadonlyMap<StreamId, Row>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, x] of a) {
    const y = b.get(id);
    if (
      !y ||
      x.stream !== y.stream ||
      x.owner !== y.owner ||
      x.state !== y.state ||
      x.next !== y.next ||
      x.revokeVersion !== y.revokeVersion ||
      x.reason !== y.reason ||
      x.url !== y.url ||
      x.name !== y.name ||
      !sameMetadata(x.metadata, y.metadata)
    )
      return false;
  }
  return true;
}
