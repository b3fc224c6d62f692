/**
 * What the operator's views read from PostgreSQL: the instances, assignments, events,
 * cluster flag and leadership tables, as plain records.
 *
 * Guarantees: `readShared` reads them all in ONE read-only repeatable-read transaction,
 * so counts and lists agree with each other. Does not: write anything, or join the rows
 * with live heartbeats and the catalog (shared/status.ts does that, purely).
 */
import type { Sql } from "./db.js";
import { num } from "./db.js";
import type { EventKind, Mode, StreamId } from "./types.js";

export interface InstanceRecord {
  readonly id: string;
  readonly registeredAt: string | null;
  readonly lastSeen: string | null;
  readonly capacity: number | null;
  readonly draining: boolean;
  readonly status: string;
  readonly version: number;
  readonly software: string | null;
  readonly location: string | null;
  readonly host: string | null;
  readonly processed: number;
  readonly errors: number;
  readonly removedAt: string | null;
}

export interface AssignmentRecord {
  readonly stream: StreamId;
  readonly owner: string;
  readonly state: "active" | "revoking";
  readonly next: string | null;
  readonly reason: string;
}

export interface EventRecord {
  readonly id: number;
  readonly at: string;
  readonly kind: EventKind;
  readonly stream: StreamId | null;
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: string | null;
  readonly epoch: number | null;
  readonly detail: unknown;
}

export interface SharedRows {
  readonly leadership: { readonly epoch: number; readonly leaderId: string | null; readonly electedAt: string | null };
  readonly flag: { readonly mode: Mode; readonly version: number; readonly updatedAt: string | null; readonly updatedBy: string | null };
  readonly instances: readonly InstanceRecord[];
  readonly assignments: readonly AssignmentRecord[];
  readonly events: readonly EventRecord[];
  /** The last leader transaction that decided moves (revokes, failovers), by reason. */
  readonly lastMoves: { readonly at: string; readonly epoch: number | null; readonly byReason: Readonly<Record<string, number>> } | undefined;
}

const iso = (v: unknown): string | null => (v instanceof Date ? v.toISOString() : typeof v === "string" ? new Date(v).toISOString() : null);
const text = (v: unknown): string | null => (typeof v === "string" ? v : null);

/**
 * Reads every orchestrator table the operator's views need, in one read-only
 * repeatable-read transaction (so counts and lists agree with each other).
 */
export async function readShared(sql: Sql, schema: string, opts: { events?: number } = {}): Promise<SharedRows> {
  const limit = Math.max(0, Math.min(1000, Math.floor(opts.events ?? 50)));
  return (await sql.begin("isolation level repeatable read read only", async (tx) => {
    const table = (name: string) => tx(`${schema}.${name}`);
    // A move is DECIDED by a revoke (live owner) or a failover put (dead owner); all rows of
    // one leader transaction share its now(), so `at` groups one decision.
    const decided = () => tx`(kind = 'revoke' or (kind = 'assign' and reason = 'failover'))`;
    const [lead, flag, inst, rows, events, moves] = await Promise.all([
      tx`select epoch, leader_id, elected_at from ${table("leadership")}`,
      tx`select mode, mode_version, updated_at, updated_by from ${table("cluster")}`,
      tx`select id, registered_at, last_seen, capacity, draining, status, version, software_version, location, host,
                processed_total, errors_total, removed_at from ${table("instances")} order by id`,
      tx`select stream_id, instance_id, state, next_instance, reason from ${table("assignments")}`,
      tx`select id, at, kind, stream_id, from_instance, to_instance, reason, epoch, detail from ${table("events")} order by id desc limit ${limit}`,
      tx`select at, max(epoch) as epoch, coalesce(reason, 'unknown') as reason, count(*) as n from ${table("events")}
          where at = (select max(at) from ${table("events")} where ${decided()}) and ${decided()}
          group by at, coalesce(reason, 'unknown')`,
    ]);
    const l = lead[0];
    const f = flag[0];
    if (!l || !f) throw new Error(`the ${schema} schema is missing its leadership or cluster row`);
    const byReason: Record<string, number> = {};
    for (const m of moves) byReason[String(m.reason)] = num(m.n);
    return {
      leadership: { epoch: num(l.epoch), leaderId: text(l.leader_id), electedAt: iso(l.elected_at) },
      flag: { mode: f.mode as Mode, version: num(f.mode_version), updatedAt: iso(f.updated_at), updatedBy: text(f.updated_by) },
      instances: inst.map((r) => ({
        id: String(r.id),
        registeredAt: iso(r.registered_at),
        lastSeen: iso(r.last_seen),
        capacity: r.capacity === null ? null : num(r.capacity),
        draining: r.draining === true,
        status: String(r.status),
        version: num(r.version),
        software: text(r.software_version),
        location: text(r.location),
        host: text(r.host),
        processed: num(r.processed_total),
        errors: num(r.errors_total),
        removedAt: iso(r.removed_at),
      })),
      assignments: rows.map((r) => ({
        stream: String(r.stream_id),
        owner: String(r.instance_id),
        state: r.state === "revoking" ? "revoking" : "active",
        next: text(r.next_instance),
        reason: String(r.reason),
      })),
      events: events.map((r) => ({
        id: num(r.id),
        at: iso(r.at) ?? "",
        kind: String(r.kind) as EventKind, // only this project's code writes the table
        stream: text(r.stream_id),
        from: text(r.from_instance),
        to: text(r.to_instance),
        reason: text(r.reason),
        epoch: r.epoch === null ? null : num(r.epoch),
        detail: r.detail ?? null,
      })),
      lastMoves: moves.length > 0 ? { at: iso(moves[0]!.at) ?? "", epoch: moves[0]!.epoch === null ? null : num(moves[0]!.epoch), byReason } : undefined,
    };
  })) as SharedRows;
}

/**
 * One stream's recent moves, newest first: each completed move once (its assign event,
 * or its unassign when it went to nobody); the revoke that started a hand-off is not a
 * second move.
 */
export async function readStreamMoves(sql: Sql, schema: string, stream: StreamId, limit: number): Promise<{ at: string; from: string | null; to: string | null; reason: string | null }[]> {
  const rows = await sql`select at, kind, from_instance, to_instance, reason from ${sql(`${schema}.events`)}
    where stream_id = ${stream} and kind in ('assign', 'unassign') order by id desc limit ${limit}`;
  return rows.map((r) => ({ at: iso(r.at) ?? "", from: text(r.from_instance), to: r.kind === "unassign" ? null : text(r.to_instance), reason: text(r.reason) }));
}
