/**
 * Legacy members: fingerv7 instances still on the old static hashing (no sidecar).
 *
 * A legacy instance with SERVER_ID s (1..TOTAL_SERVERS) processes every stream whose
 * id k satisfies  int(k) % TOTAL_SERVERS == s − 1  and upserts a row into
 * `server_heartbeats (server_id, last_heartbeat, ...)` about every 60 s.
 *
 * With LEGACY_TOTAL_SERVERS set, every server_id with a row fresher than
 * LEGACY_HEARTBEAT_TIMEOUT that is NOT also a live sidecar member is a legacy member:
 * its streams are fixed by that rule, nobody else is given them, and the rest is
 * assigned as usual. When it goes silent, or comes back with a sidecar (same id), its
 * streams join the orchestrated pool. So a fleet migrates one instance at a time with
 * every stream owned exactly once.
 */
import type { Clock } from "./clock.js";
import type { Sql } from "./db.js";
import { ident } from "./db.js";
import type { Stream, StreamId } from "./types.js";

export interface LegacyMember {
  readonly id: string;
  readonly lastHeartbeat: string;
  readonly ageMs: number;
  readonly status: string | null;
  readonly ip: string | null;
}

/**
 * Every row of the legacy heartbeat table (one per legacy instance: a small table); []
 * when the table does not exist. `ageMs` compares the written timestamp, which a legacy
 * host may have taken from its own clock, with PostgreSQL's: LegacyView trusts it only
 * for a row it has not watched yet.
 */
export async function readLegacyRows(sql: Sql, table: string): Promise<LegacyMember[]> {
  try {
    const rows = await sql.unsafe(
      `select server_id::text as id, last_heartbeat, status::text as status, ip_address::text as ip,
              (extract(epoch from (now() - last_heartbeat)) * 1000)::float8 as age_ms
         from ${ident(table)}
        where last_heartbeat is not null`,
    );
    return rows.map((r) => ({
      id: String(r.id),
      lastHeartbeat: new Date(r.last_heartbeat as string).toISOString(),
      ageMs: Math.max(0, Number(r.age_ms)),
      status: (r.status as string | null) ?? null,
      ip: (r.ip as string | null) ?? null,
    }));
  } catch (err) {
    if ((err as { code?: string }).code === "42P01") return []; // no legacy table: no legacy members
    throw err;
  }
}

/** Rows whose written timestamp is fresher than `timeoutMs` by PostgreSQL's clock. */
export async function readLegacyMembers(sql: Sql, table: string, timeoutMs: number): Promise<LegacyMember[]> {
  return (await readLegacyRows(sql, table)).filter((m) => m.ageMs < timeoutMs);
}

/**
 * The legacy owner (a SERVER_ID, as text) of a stream id, or undefined when Python's
 * int() would refuse the id. Accepts what int() accepts: surrounding whitespace, a sign,
 * and single underscores between digits ("+5", " 7 ", "1_000").
 */
export function legacyServerFor(id: StreamId, totalServers: number): string | undefined {
  const m = /^\s*([+-]?)(\d+(?:_\d+)*)\s*$/.exec(id);
  if (!m) return undefined;
  const digits = m[2]!.replace(/_/g, "");
  if (digits.length > 15) return undefined;
  const k = Number(digits) * (m[1] === "-" ? -1 : 1);
  // Python's % is never negative for a positive divisor; match it.
  const r = ((k % totalServers) + totalServers) % totalServers;
  return String(r + 1);
}

/**
 * Streams owned by live legacy members. `sidecars` are ids of live sidecar members: a
 * legacy id that is also a live sidecar has migrated and owns nothing by the old rule.
 */
export function legacyOwned(catalog: readonly Stream[], legacy: readonly LegacyMember[], totalServers: number | undefined, sidecars: ReadonlySet<string>): Map<StreamId, string> {
  const out = new Map<StreamId, string>();
  if (!totalServers) return out;
  const live = new Set(legacy.map((m) => m.id).filter((id) => !sidecars.has(id)));
  if (live.size === 0) return out;
  for (const s of catalog) {
    const owner = legacyServerFor(s.id, totalServers);
    if (owner !== undefined && live.has(owner)) out.set(s.id, owner);
  }
  return out;
}

export interface LegacyViewOptions {
  readonly sql: Sql;
  /** LEGACY_HEARTBEATS_TABLE. */
  readonly table: string;
  /** LEGACY_HEARTBEAT_TIMEOUT, ms: an older row is not alive. */
  readonly timeoutMs: number;
  /** LEGACY_TOTAL_SERVERS; unset: there are no legacy members and nothing is read. */
  readonly totalServers: number | undefined;
  readonly clock: Clock;
  /** A read younger than this (ms) is reused. Legacy rows are written about every 60 s. */
  readonly maxAgeMs: number;
}

/**
 * The legacy members and their streams, for everyone in one agent that needs them (the
 * leader's tick, the dry run, hashing, the operator's views). Reads the heartbeat table at
 * most every `maxAgeMs`, sharing a read in flight; a failed read throws and keeps the last
 * good one in `latest`.
 *
 * Liveness is judged on this agent's own clock, like the sidecars': a legacy instance is
 * alive while its `last_heartbeat` value keeps changing, watched here, within
 * LEGACY_HEARTBEAT_TIMEOUT. Only for a row seen for the first time is the written
 * timestamp's age (against PostgreSQL's clock) used, to date its last change; a legacy
 * host whose clock is far behind therefore counts as dead at first sight only until its
 * next write (about a minute).
 */
export class LegacyView {
  private last: { at: number; members: readonly LegacyMember[] } | undefined;
  /** Per server_id: the last value seen and when (this agent's clock) it last changed. */
  private readonly progress = new Map<string, { value: string; changedAt: number }>();
  private inflight: Promise<readonly LegacyMember[]> | undefined;

  constructor(private readonly o: LegacyViewOptions) {}

  /** The view an agent uses: its LEGACY_* settings, re-read at most once a heartbeat. */
  static fromConfig(c: { legacyHeartbeatsTable: string; legacyHeartbeatTimeoutMs: number; legacyTotalServers: number | undefined; heartbeatIntervalMs: number }, sql: Sql, clock: Clock): LegacyView {
    return new LegacyView({ sql, table: c.legacyHeartbeatsTable, timeoutMs: c.legacyHeartbeatTimeoutMs, totalServers: c.legacyTotalServers, clock, maxAgeMs: c.heartbeatIntervalMs });
  }

  get enabled(): boolean {
    return !!this.o.totalServers;
  }

  /** The members of the last successful read ([] before one, or when disabled). */
  get latest(): readonly LegacyMember[] {
    return this.last?.members ?? [];
  }

  /** Fresh legacy members: the last read if younger than `maxAgeMs`, else a new one. */
  async members(): Promise<readonly LegacyMember[]> {
    if (!this.enabled) return [];
    if (this.last && this.o.clock.now() - this.last.at < this.o.maxAgeMs) return this.last.members;
    this.inflight ??= this.fetch().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /**
   * Streams of live legacy members by the old static rule, from the last read. `sidecars`:
   * the ids of live sidecar members (a legacy id that is also one has migrated).
   */
  owned(catalog: readonly Stream[], sidecars: ReadonlySet<string>): Map<StreamId, string> {
    return legacyOwned(catalog, this.latest, this.o.totalServers, sidecars);
  }

  /** members(), then owned(): both from one fresh read. */
  async read(catalog: readonly Stream[], sidecars: ReadonlySet<string>): Promise<{ members: readonly LegacyMember[]; owned: Map<StreamId, string> }> {
    const members = await this.members();
    return { members, owned: legacyOwned(catalog, members, this.o.totalServers, sidecars) };
  }

  private async fetch(): Promise<readonly LegacyMember[]> {
    const started = this.o.clock.now();
    const rows = await readLegacyRows(this.o.sql, this.o.table);
    const now = this.o.clock.now();
    const members: LegacyMember[] = [];
    for (const row of rows) {
      const seen = this.progress.get(row.id);
      if (!seen) this.progress.set(row.id, { value: row.lastHeartbeat, changedAt: now - Math.min(row.ageMs, this.o.timeoutMs) });
      else if (seen.value !== row.lastHeartbeat) this.progress.set(row.id, { value: row.lastHeartbeat, changedAt: now });
      const silentMs = now - this.progress.get(row.id)!.changedAt;
      if (silentMs < this.o.timeoutMs) members.push({ ...row, ageMs: silentMs });
    }
    this.last = { at: started, members };
    return members;
  }
}
