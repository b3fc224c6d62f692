/**
 * Cluster-wide reads for the operator's surface (/status, /instances, /streams/status, the
 * dashboard, fingerctl). Every agent answers for the WHOLE cluster from shared state, never
 * from leader-only memory, so any agent's address works:
 * - Postgres: the instances, assignments, events, cluster flag and leadership tables;
 * - the membership tracker's snapshot: live heartbeats from Redis (capacity, held streams,
 *   worker health, mode), as this agent observed them;
 * - the catalog cache: the active streams.
 *
 * `readShared` (shared/status-rows.ts) does the I/O (one read-only transaction, one
 * consistent snapshot); `clusterView`, here, is PURE and joins the three sources.
 * Response shapes are zod schemas so the server's tests and fingerctl validate exactly
 * what travels.
 */
import { z } from "zod";
import { compareIds, presentId, type CatalogSnapshot } from "./catalog.js";
import type { LegacyMember } from "./legacy.js";
import { instanceState, isLive } from "./member-state.js";
import type { MemberView, Snapshot } from "./membership.js";
import type { EventRecord, SharedRows } from "./status-rows.js";
import { failingStreamSchema, healthCountsSchema, healthSummary, quarantinedStreamSchema, type HealthSummary } from "./status-health.js";
import type { HealthRecord } from "./stream-health-store.js";
import { INSTANCE_STATES, type InstanceStatus, type LeaderInfo, type StreamId } from "./types.js";

// ---- the joined view (PURE) ------------------------------------------------------------

const id = z.union([z.number(), z.string()]);

export const instanceSchema = z.object({
  instance_id: z.string(),
  /** The documents' name for instance_id (same value). */
  id: z.string(),
  status: z.enum(INSTANCE_STATES),
  is_leader: z.boolean(),
  registered_at: z.string().nullable(),
  last_heartbeat: z.string().nullable(),
  last_heartbeat_ms_ago: z.number().nullable(),
  max_streams: z.number(),
  current_streams: z.number(),
  revoking_streams: z.number(),
  held_streams: z.number(),
  load_percentage: z.number(),
  processed_total: z.number(),
  errors_total: z.number(),
  /** performanceScore(processed_total, errors_total): the share of successful captures, 0–1. */
  performance_score: z.number(),
  worker: z.object({ ok: z.boolean(), last_seen_ms_ago: z.number().nullable(), kind: z.string() }).nullable(),
  mode: z.enum(["orchestrated", "hashed"]).nullable(),
  draining: z.boolean(),
  version: z.string().nullable(),
  assignment_version: z.number(),
  location: z.string(),
  host: z.string().nullable(),
  /** Its worker is degraded (most streams fail together, or rate-limited): its streams move away. */
  degraded: z.boolean(),
  degraded_reason: z.enum(["failures", "rate-limited"]).nullable(),
  degraded_until: z.string().nullable(),
  /** LABELS of its worker (e.g. {exit: "br"}). */
  labels: z.record(z.string(), z.string()),
});
export type InstanceView = z.infer<typeof instanceSchema>;

export const eventSchema = z.object({
  id: z.number(),
  at: z.string(),
  kind: z.string(),
  stream_id: id.nullable(),
  from: z.string().nullable(),
  to: z.string().nullable(),
  reason: z.string().nullable(),
  epoch: z.number().nullable(),
  detail: z.unknown(),
  /** The documents' names: when, what (the kind), and one sentence. */
  timestamp: z.string(),
  action: z.string(),
  details: z.string(),
});
export type EventView = z.infer<typeof eventSchema>;

export const leaderSchema = z.object({ id: z.string(), epoch: z.number(), ready: z.boolean(), elected_at: z.string().nullable() }).nullable();

export const lastRebalanceSchema = z
  .object({ at: z.string(), reason: z.string(), moved: z.number(), by_reason: z.record(z.string(), z.number()), epoch: z.number().nullable() })
  .nullable();

export const streamTotalsSchema = z.object({
  total: z.number(),
  active: z.number(),
  inactive: z.number(),
  assigned: z.number(),
  unassigned: z.number(),
  revoking: z.number(),
  /** Streams left to legacy members (fingerv7 without a sidecar) by the old static rule. */
  legacy: z.number(),
});

export interface ClusterView {
  readonly generatedAt: string;
  readonly leader: z.infer<typeof leaderSchema>;
  readonly epoch: number;
  readonly flag: SharedRows["flag"];
  readonly instances: InstanceView[];
  readonly counts: Record<InstanceStatus | "total", number>;
  readonly streams: z.infer<typeof streamTotalsSchema>;
  readonly unassigned: StreamId[];
  /** Streams each instance owns (rows; for a member serving by hashing, what it holds). */
  readonly owned: ReadonlyMap<string, readonly StreamId[]>;
  /** What each live instance's worker last reported per stream. */
  readonly states: ReadonlyMap<string, Readonly<Record<StreamId, { readonly s: string; readonly e?: string }>>>;
  readonly events: EventView[];
  readonly lastRebalance: z.infer<typeof lastRebalanceSchema>;
  readonly catalogError: string | null;
  /** Stream health (shared/status-health.ts); counts of zero when health was not read. */
  readonly health: HealthSummary;
  /** Each stream's current owner: the live member holding it, else its row's owner. */
  readonly ownerOf: (s: StreamId) => string | null;
}

export interface ViewInput {
  readonly rows: SharedRows;
  readonly snapshot: Snapshot | undefined;
  readonly catalog: CatalogSnapshot | undefined;
  readonly catalogError?: string | undefined;
  /** The freshest leader this agent knows of (its heartbeat reply or the snapshot). */
  readonly leader: LeaderInfo | undefined;
  /** Wall clock, ms since the epoch, for the timestamps shown. */
  readonly nowWall: number;
  /** Live legacy members and the streams they own by the old static rule. */
  readonly legacy?: { readonly members: readonly LegacyMember[]; readonly owned: ReadonlyMap<StreamId, string> };
  /** Stream health records (shared/stream-health-store.ts readAll). */
  readonly health?: ReadonlyMap<StreamId, HealthRecord>;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

export function clusterView(input: ViewInput): ClusterView {
  const { rows, snapshot, catalog } = input;
  const members = snapshot?.members ?? new Map<string, MemberView>();
  const rowById = new Map(rows.instances.map((r) => [r.id, r]));
  const leader = input.leader ?? snapshot?.leader;

  // Ownership: assignment rows; members serving by hashing own what they hold.
  const owned = new Map<string, StreamId[]>();
  const revoking = new Map<string, number>();
  const withRow = new Set<StreamId>();
  for (const a of rows.assignments) {
    withRow.add(a.stream);
    (owned.get(a.owner) ?? owned.set(a.owner, []).get(a.owner)!).push(a.stream);
    if (a.state === "revoking") revoking.set(a.owner, (revoking.get(a.owner) ?? 0) + 1);
  }
  const held = new Map<StreamId, string>();
  for (const m of members.values()) {
    if (!isLive(m)) continue;
    for (const s of m.hb.held) held.set(s, m.id);
    if (m.hb.mode === "hashed") {
      const mine = new Set(owned.get(m.id) ?? []);
      for (const s of m.hb.held) mine.add(s);
      owned.set(m.id, [...mine]);
    }
  }
  const legacyOwned = input.legacy?.owned ?? new Map<StreamId, string>();
  const legacyIds = new Set(legacyOwned.values());
  for (const [s, lid] of legacyOwned) (owned.get(lid) ?? owned.set(lid, []).get(lid)!).push(s);
  const legacyById = new Map((input.legacy?.members ?? []).map((m) => [m.id, m]));
  for (const list of owned.values()) list.sort(compareIds);

  const ids = [...new Set([...rowById.keys(), ...[...members.values()].filter((m) => m.hb).map((m) => m.id), ...legacyIds])].sort();
  const instances: InstanceView[] = ids.map((iid) => {
    const m = members.get(iid);
    const row = rowById.get(iid);
    const hb = m?.hb;
    const lm = legacyIds.has(iid) ? legacyById.get(iid) : undefined;
    const status: InstanceStatus = lm ? "legacy" : instanceState(m, row);
    const capacity = hb?.capacity ?? row?.capacity ?? 0;
    const current = owned.get(iid)?.length ?? 0;
    const seenAgo = m?.hb ? Math.round(m.silentMs) : null;
    return {
      instance_id: iid,
      id: iid,
      status,
      is_leader: leader?.id === iid,
      registered_at: row?.registeredAt ?? null,
      last_heartbeat: lm ? lm.lastHeartbeat : seenAgo !== null ? new Date(input.nowWall - seenAgo).toISOString() : (row?.lastSeen ?? null),
      last_heartbeat_ms_ago: lm ? Math.round(lm.ageMs) : seenAgo,
      max_streams: capacity,
      current_streams: current,
      revoking_streams: revoking.get(iid) ?? 0,
      held_streams: isLive(m) ? m.hb.held.length : 0,
      load_percentage: capacity > 0 ? round1((100 * current) / capacity) : 0,
      processed_total: Math.max(hb?.worker.processed ?? 0, row?.processed ?? 0),
      errors_total: Math.max(hb?.worker.errors ?? 0, row?.errors ?? 0),
      performance_score: performanceScore(Math.max(hb?.worker.processed ?? 0, row?.processed ?? 0), Math.max(hb?.worker.errors ?? 0, row?.errors ?? 0)),
      worker: hb ? { ok: hb.worker.ok, last_seen_ms_ago: hb.worker.lastSeenMsAgo, kind: hb.worker.kind } : null,
      mode: isLive(m) ? m.hb.mode : null,
      draining: (hb?.draining ?? false) || (row?.draining ?? false),
      version: hb?.software ?? row?.software ?? null,
      assignment_version: row?.version ?? 0,
      location: hb?.location ?? row?.location ?? "",
      host: hb?.host ?? row?.host ?? null,
      degraded: isLive(m) && m.hb.degraded !== undefined,
      degraded_reason: isLive(m) ? (m.hb.degraded?.reason ?? null) : null,
      degraded_until: isLive(m) ? (m.hb.degraded?.until ?? null) : null,
      labels: { ...(hb?.labels ?? {}) },
    };
  });

  const counts = { total: instances.length, active: 0, warning: 0, inactive: 0, recovering: 0, draining: 0, removed: 0, legacy: 0 };
  for (const i of instances) counts[i.status]++;

  const active = catalog?.streams.map((s) => s.id) ?? [];
  const unassigned = active.filter((s) => !withRow.has(s) && !held.has(s) && !legacyOwned.has(s));
  const streams = {
    total: active.length + (catalog?.inactive ?? 0),
    active: active.length,
    inactive: catalog?.inactive ?? 0,
    assigned: active.length - unassigned.length,
    unassigned: unassigned.length,
    revoking: rows.assignments.filter((a) => a.state === "revoking").length,
    legacy: legacyOwned.size,
  };

  const rowOwner = new Map(rows.assignments.map((a) => [a.stream, a.owner]));
  const ownerOf = (s: StreamId): string | null => held.get(s) ?? rowOwner.get(s) ?? legacyOwned.get(s) ?? null;

  const lm = rows.lastMoves;
  const lastRebalance = lm
    ? {
        at: lm.at,
        reason: Object.entries(lm.byReason).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ?? "unknown",
        moved: Object.values(lm.byReason).reduce((a, b) => a + b, 0),
        by_reason: { ...lm.byReason },
        epoch: lm.epoch,
      }
    : null;

  return {
    generatedAt: new Date(input.nowWall).toISOString(),
    leader: leader ? { id: leader.id, epoch: leader.epoch, ready: leader.ready, elected_at: rows.leadership.leaderId === leader.id ? rows.leadership.electedAt : null } : null,
    epoch: Math.max(rows.leadership.epoch, leader?.epoch ?? 0),
    flag: rows.flag,
    instances,
    counts,
    streams,
    unassigned,
    owned,
    states: new Map([...members.values()].filter((m) => isLive(m) && m.hb.states).map((m) => [m.id, m.hb!.states!])),
    events: rows.events.map(eventView),
    lastRebalance,
    catalogError: input.catalogError ?? null,
    health: healthSummary(catalog?.streams ?? [], ownerOf, input.health ?? new Map()),
    ownerOf,
  };
}

function eventView(e: EventRecord): EventView {
  const stream = e.stream === null ? null : presentId(e.stream);
  return {
    id: e.id,
    at: e.at,
    kind: e.kind,
    stream_id: stream,
    from: e.from,
    to: e.to,
    reason: e.reason,
    epoch: e.epoch,
    detail: e.detail,
    timestamp: e.at,
    action: e.kind,
    details: describeEvent(e.kind, stream, e.from, e.to, e.reason),
  };
}

/**
 * The documents' performance score of an instance: the share of its worker's captures
 * that succeeded, processed / (processed + errors), over the totals its worker reported
 * (1 when it reported nothing yet: no evidence of trouble). Rounded to 3 decimals.
 */
export function performanceScore(processed: number, errors: number): number {
  const total = processed + errors;
  return total > 0 ? Math.round((1000 * processed) / total) / 1000 : 1;
}

/** One sentence for a recent change, as the documents' `details` ("Moved stream 12 from a to b"). */
export function describeEvent(kind: string, stream: string | number | null, from: string | null, to: string | null, reason: string | null): string {
  const why = reason ? ` (${reason})` : "";
  const s = stream === null ? "" : `stream ${stream}`;
  switch (kind) {
    case "assign":
      return from && to && from !== to ? `Moved ${s} from ${from} to ${to}${why}` : `Assigned ${s} to ${to ?? "nobody"}${why}`;
    case "revoke":
      return `Revoking ${s} from ${from ?? "?"}${to ? ` for ${to}` : ""}${why}`;
    case "unassign":
      return `Unassigned ${s} from ${from ?? "?"}${why}`;
    case "unplaced":
      return `Streams left unassigned${why}`;
    case "drain":
      return `Drain requested for ${from ?? "?"}${why}`;
    case "undrain":
      return `Undrain requested for ${from ?? "?"}${why}`;
    case "mode":
      return `Cluster mode changed${why}`;
    case "leader":
      return `New leader ${to ?? from ?? "?"}${why}`;
    default:
      return `${kind}${s ? ` ${s}` : ""}${why}`;
  }
}

// ---- response shapes (the contract; fingerctl and the tests parse with these) -----------

export const statusBody = z.object({
  generated_at: z.string(),
  answered_by: z.string(),
  leader: leaderSchema,
  epoch: z.number(),
  mode: z.enum(["orchestrated", "hashed"]),
  mode_version: z.number(),
  mode_updated_at: z.string().nullable(),
  mode_updated_by: z.string().nullable(),
  instances: z.object({ total: z.number(), active: z.number(), warning: z.number(), inactive: z.number(), recovering: z.number(), draining: z.number(), removed: z.number() }),
  streams: streamTotalsSchema,
  last_rebalance: lastRebalanceSchema,
  catalog_error: z.string().nullable(),
});
export type StatusBody = z.infer<typeof statusBody>;

export const instancesBody = z.object({
  generated_at: z.string(),
  instances: z.array(instanceSchema),
  summary: z.object({
    total_instances: z.number(),
    live_instances: z.number(),
    total_capacity: z.number(),
    total_assigned: z.number(),
    average_load: z.number(),
    system_imbalance: z.number(),
    max_stream_difference: z.number(),
    imbalance_threshold: z.number(),
  }),
});
export type InstancesBody = z.infer<typeof instancesBody>;

export const streamsStatusBody = z.object({
  generated_at: z.string(),
  mode: z.enum(["orchestrated", "hashed"]),
  streams: streamTotalsSchema,
  distribution: z.array(
    z.object({
      instance_id: z.string(),
      status: z.enum(INSTANCE_STATES),
      max_streams: z.number(),
      count: z.number(),
      streams: z.array(id),
      /** What the worker last reported per stream (processing, completed, failed, …), with the error of a failing one. */
      stream_states: z.record(z.string(), z.object({ status: z.string(), error: z.string().optional() })),
      /** The documents' names: the count, the ids, and the instance's last heartbeat. */
      assigned_streams: z.number(),
      stream_ids: z.array(id),
      last_updated: z.string().nullable(),
    }),
  ),
  unassigned: z.array(id),
  recent_changes: z.array(eventSchema),
  catalog_error: z.string().nullable(),
  /** Active streams by health, and the failing and quarantined ones. */
  health: healthCountsSchema,
  failing_streams: z.array(failingStreamSchema),
  quarantined_streams: z.array(quarantinedStreamSchema),
  /** Active streams no worker has reported on yet; the active streams in none of the three lists are ok. */
  unknown_streams: z.array(id),
});
export type StreamsStatusBody = z.infer<typeof streamsStatusBody>;

export const errorBody = z.object({ error: z.string(), message: z.string() }).passthrough();

export const modeBody = z.object({ mode: z.enum(["orchestrated", "hashed"]), version: z.number(), changed: z.boolean(), message: z.string() });
export const drainBody = z.object({ instance_id: z.string(), draining: z.boolean(), message: z.string() });
export const rebalanceBody = z.object({ requested: z.boolean(), leader: z.string().nullable(), message: z.string() });
export const planBody = z.object({
  dry_run: z.literal(true),
  epoch: z.number(),
  would_rebalance: z.boolean(),
  moves: z.array(z.object({ stream_id: id, from: z.string().nullable(), to: z.string().nullable(), reason: z.string() })),
  by_reason: z.record(z.string(), z.number()),
  targets: z.record(z.string(), z.number()),
  unassigned: z.array(id),
  waiting: z.array(id),
  ops: z.object({ put: z.number(), revoke: z.number(), retarget: z.number(), delete: z.number() }),
  message: z.string(),
});
export type PlanBody = z.infer<typeof planBody>;
