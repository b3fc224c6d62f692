/**
 * Postgres reads and the few writes that are not the leader's: registration, the drain
 * flag, the cluster mode flag. The leader's fenced writes live in leader/store.ts.
 */
import type { Sql } from "./db.js";
import { REPEATED, ident, num } from "./db.js";
import type { EventKind, Mode, Stream, StreamId } from "./types.js";

export interface OwnAssignment {
  /** The instance row exists (false before the first registration). */
  readonly registered: boolean;
  readonly version: number;
  /** Epoch of the leader that last wrote this member's rows. */
  readonly epoch: number;
  readonly draining: boolean;
  /** The agent session the leader last wrote these rows for (null: never). */
  readonly stampedSession: string | null;
  /** The capacity the worker last declared (older API), or null. */
  readonly declaredCapacity: number | null;
  readonly active: readonly Stream[];
  readonly revoking: readonly StreamId[];
  readonly mode: Mode;
  readonly modeVersion: number;
}

export class Store {
  readonly s: string;
  constructor(
    readonly sql: Sql,
    schema: string,
  ) {
    this.s = ident(schema);
  }

  /** One statement, one snapshot: this member's rows, version and the cluster flag. */
  async ownAssignment(instanceId: string): Promise<OwnAssignment> {
    const rows = await this.sql.unsafe(
      `select i.version, i.epoch, i.draining, i.stamped_session, i.declared_capacity,
              c.mode, c.mode_version,
              coalesce(json_agg(json_build_object('id', a.stream_id, 'state', a.state, 'url', a.url, 'name', a.name, 'metadata', a.metadata)
                       order by a.stream_id) filter (where a.stream_id is not null), '[]'::json) as rows
         from ${this.s}.cluster c
         left join ${this.s}.instances i on i.id = $1
         left join ${this.s}.assignments a on a.instance_id = i.id
        group by i.id, i.version, i.epoch, i.draining, i.stamped_session, i.declared_capacity, c.mode, c.mode_version`,
      [instanceId], REPEATED,
    );
    const r = rows[0];
    if (!r) throw new Error("orchestrator schema is missing its cluster row");
    const list = (r.rows ?? []) as { id: string; state: string; url: string; name: string; metadata: Record<string, unknown> }[];
    return {
      registered: r.version !== null,
      version: num(r.version),
      epoch: num(r.epoch),
      draining: r.draining === true,
      stampedSession: (r.stamped_session as string | null) ?? null,
      declaredCapacity: r.declared_capacity === null || r.declared_capacity === undefined ? null : num(r.declared_capacity),
      active: list.filter((x) => x.state === "active").map((x) => ({ id: x.id, url: x.url, name: x.name, metadata: x.metadata ?? {} })),
      revoking: list.filter((x) => x.state === "revoking").map((x) => x.id),
      mode: r.mode as Mode,
      modeVersion: num(r.mode_version),
    };
  }

  /** Creates or refreshes this agent's instance row. Never touches leader-owned columns. */
  async register(reg: { id: string; capacity: number; software: string; location: string; host: string }): Promise<void> {
    await this.sql.unsafe(
      `insert into ${this.s}.instances (id, capacity, software_version, location, host, last_seen)
       values ($1, $2, $3, $4, $5, now())
       on conflict (id) do update set capacity = excluded.capacity, software_version = excluded.software_version,
         location = excluded.location, host = excluded.host, last_seen = now(), removed_at = null`,
      [reg.id, reg.capacity, reg.software, reg.location, reg.host],
    );
  }

  /** Remembers the capacity the worker declared (null forgets it). */
  async setDeclaredCapacity(id: string, capacity: number | null): Promise<void> {
    await this.sql.unsafe(`update ${this.s}.instances set declared_capacity = $2 where id = $1`, [id, capacity]);
  }

  /** Operator drain/undrain. Returns false for an unknown instance. */
  async setDraining(id: string, draining: boolean): Promise<boolean> {
    const rows = await this.sql.unsafe(
      `update ${this.s}.instances set draining = $2, drain_requested_at = case when $2 then now() else null end
        where id = $1 returning id`,
      [id, draining],
    );
    if (rows.length > 0) {
      await this.event({ kind: draining ? "drain" : "undrain", from_instance: id, reason: "operator" });
    }
    return rows.length > 0;
  }

  /** Flips the cluster flag. Returns the new {mode, version} and whether it changed. */
  async setMode(mode: Mode, by: string): Promise<{ mode: Mode; version: number; changed: boolean }> {
    const rows = await this.sql.unsafe(
      `with prev as (select mode from ${this.s}.cluster for update)
       update ${this.s}.cluster c set mode = $1, updated_at = now(), updated_by = $2,
              mode_version = c.mode_version + case when c.mode = $1 then 0 else 1 end
         from prev
       returning c.mode, c.mode_version, prev.mode as prev_mode`,
      [mode, by],
    );
    const r = rows[0]!;
    const changed = r.prev_mode !== mode;
    if (changed) await this.event({ kind: "mode", reason: `set to ${mode} by ${by}` });
    return { mode: r.mode as Mode, version: num(r.mode_version), changed };
  }

  async clusterFlag(): Promise<{ mode: Mode; version: number }> {
    const rows = await this.sql.unsafe(`select mode, mode_version from ${this.s}.cluster`);
    return { mode: rows[0]!.mode as Mode, version: num(rows[0]!.mode_version) };
  }

  async event(e: { kind: EventKind; stream_id?: string; from_instance?: string; to_instance?: string; reason?: string; epoch?: number; detail?: unknown }): Promise<void> {
    await this.sql.unsafe(
      `insert into ${this.s}.events (kind, stream_id, from_instance, to_instance, reason, epoch, detail) values ($1, $2, $3, $4, $5, $6, $7)`,
      [e.kind, e.stream_id ?? null, e.from_instance ?? null, e.to_instance ?? null, e.reason ?? null, e.epoch ?? null, (e.detail ?? null) as never],
    );
  }
}
