/** Types that cross the agent/leader boundary or travel through Redis and Postgres. */

/** Stream ids are kept as text: the production catalog's `index` column may be text or integer. */
export type StreamId = string;

export interface Stream {
  readonly id: StreamId;
  readonly url: string;
  readonly name: string;
  /** Every other catalog column, passed through to the worker. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /**
   * Labels a worker must carry to serve this stream (from the STREAMS_PLACEMENT_COLUMN
   * column, e.g. "exit=nl"); absent = any worker.
   */
  readonly constraint?: Readonly<Record<string, string>>;
}

export type Mode = "orchestrated" | "hashed";

/**
 * Why a stream moved. Stored in `assignments.reason` and `events.reason`, shown in
 * /streams/status and the dry run, and the `reason` label of fingerv7_moves_total: the
 * strings are part of the contract.
 */
export const MOVE_REASONS = [
  "failover", // the owner died
  "join", // a rebalance because a member joined
  "drain", // the owner is draining
  "imbalance", // a rebalance because loads drifted past the threshold
  "catalog", // the stream was added to or removed from the catalog
  "capacity", // the owner's capacity shrank, or capacity appeared for unplaced streams
  "hashed", // a member serving in hashed mode owns the stream by hashing
  "manual", // an operator asked for a rebalance
  "released", // the worker gave the stream up (POST /streams/release)
  "handoff cancelled", // a stream being revoked stays with its owner after all
  "legacy", // a legacy member (no sidecar) owns the stream by the old static rule
  "failing", // it failed continuously on its worker for STREAM_FAILOVER_AFTER
  "quarantined", // it failed on STREAM_QUARANTINE_AFTER workers in a row: taken off every worker
  "worker-degraded", // its worker is degraded (most of its streams fail, or it is rate-limited)
  "no-matching-worker", // no live worker carries the labels the stream requires
] as const;
export type MoveReason = (typeof MOVE_REASONS)[number];

export function isMoveReason(r: string): r is MoveReason {
  return (MOVE_REASONS as readonly string[]).includes(r);
}

/** The `kind` of a row of the events table. */
export type EventKind =
  | "assign" // a stream given to a member (reason: a MoveReason)
  | "revoke" // a stream taken from a live member, handed on once it let go
  | "unassign" // a row dropped (the stream left the catalog, or is hashed or legacy now)
  | "unplaced" // streams left without a member (capacity too small)
  | "leader" // a leader won a new fencing epoch
  | "drain" // an operator drained an instance
  | "undrain"
  | "mode"; // the cluster flag changed

/**
 * An instance's state as /instances shows it and `instances.status` records it
 * ("legacy" is shown only: a legacy member has no row of ours).
 */
export const INSTANCE_STATES = ["active", "warning", "inactive", "recovering", "draining", "removed", "legacy"] as const;
export type InstanceStatus = (typeof INSTANCE_STATES)[number];

/**
 * What an agent writes to Redis every HEARTBEAT_INTERVAL (JSON, TTL = HEARTBEAT_TIMEOUT).
 * `held` is the safety-critical field: every stream the worker beside this agent may be
 * processing right now (under a lease that has not run out). Nobody else is given a
 * stream while a live member reports holding it.
 */
export interface Heartbeat {
  readonly id: string;
  /** Increases with every heartbeat; progress of `seq` is what proves the agent alive. */
  readonly seq: number;
  /** The TTL this heartbeat was written with (its HEARTBEAT_TIMEOUT), so readers can date it from its PTTL. */
  readonly ttlMs?: number;
  /** Its WORKER_LEASE: deciders wait at least this (plus a margin) before declaring it dead. */
  readonly leaseMs?: number;
  /**
   * Random per process start, with a suffix that changes whenever the agent withdrew and
   * resynced (a freeze, a lapsed lease): either way the leader re-stamps its rows.
   */
  readonly session: string;
  readonly capacity: number;
  readonly draining: boolean;
  /** The mode this agent is serving in right now. */
  readonly mode: Mode;
  /** This agent's USE_ORCHESTRATOR. */
  readonly useOrchestrator: boolean;
  /** Assignment version (from Postgres) this agent has loaded. */
  readonly version: number;
  readonly held: readonly StreamId[];
  /** The agent is shutting down: once `held` is empty its streams may move at once. */
  readonly leaving: boolean;
  /** The agent exits to be restarted (SHUTDOWN_DRAIN=false): it keeps its streams for HEARTBEAT_TIMEOUT. */
  readonly restarting: boolean;
  /** Streams the worker gave up (POST /streams/release): move them elsewhere now. */
  readonly released?: readonly StreamId[];
  /**
   * What the worker last reported for the streams it holds (POST /v1/report,
   * POST /api/streams/update): status, and the error of a failing one (truncated).
   */
  readonly states?: Readonly<Record<StreamId, { readonly s: string; readonly e?: string }>>;
  readonly worker: WorkerHealth;
  /** The agent's previous heartbeat to PostgreSQL was confirmed (it reaches PostgreSQL). */
  readonly pgOk?: boolean;
  /** The agent's previous heartbeat to Redis was confirmed. */
  readonly redisOk?: boolean;
  /**
   * Its heartbeats to PostgreSQL have failed for half a HEARTBEAT_TIMEOUT or more: it
   * cannot read new rows, so it must be given nothing (what it serves stays with it).
   */
  readonly pgCut?: boolean;
  /** LABELS: what this agent's worker is (e.g. {exit: "br"}), matched against streams' constraints. */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * The digest of what this agent hashes besides the membership (catalog ids and
   * constraints, thresholds: shared/placement/hash-owners.ts hashingBasis) while it keeps a
   * hashed view; absent otherwise. Hashing agents take free streams only while every peer
   * that may take publishes the same one.
   */
  readonly hashBasis?: string;
  /** The worker is degraded (agent/stream-outcomes.ts): its streams move away, it gets nothing new. */
  readonly degraded?: WorkerDegraded;
  readonly startedAt: string;
  readonly host: string;
  readonly location: string;
  readonly software: string;
}

export interface WorkerHealth {
  /** A worker fetched or reported within WORKER_TIMEOUT. */
  readonly ok: boolean;
  /** Milliseconds since the worker was last heard from; null = never. */
  readonly lastSeenMsAgo: number | null;
  readonly processed: number;
  readonly errors: number;
  readonly kind: "v1" | "legacy" | "none";
}

export interface WorkerDegraded {
  /** "failures": most of its streams fail together; "rate-limited": it reported a pause. */
  readonly reason: "failures" | "rate-limited";
  /** Wall-clock ISO time the pause ends (rate-limited only). */
  readonly until?: string;
}

/** A stream's health as operators see it (shared/stream-health.ts decides it). */
export const STREAM_HEALTHS = ["ok", "failing", "quarantined", "unknown"] as const;
export type StreamHealth = (typeof STREAM_HEALTHS)[number];

export interface LeaderInfo {
  readonly id: string;
  readonly epoch: number;
  /** False while the leader holds the lease but could not yet bump the epoch (Postgres down). */
  readonly ready: boolean;
}

/** A nudge on the pub/sub channel. Nudges only speed things up; correctness never depends on one arriving. */
export type Nudge =
  | { readonly t: "assign"; readonly epoch: number; readonly versions: Readonly<Record<string, number>> }
  | { readonly t: "ack"; readonly id: string }
  | { readonly t: "mode"; readonly mode: Mode }
  | { readonly t: "leader"; readonly id: string | null; readonly epoch: number }
  | { readonly t: "drain"; readonly id: string }
  | { readonly t: "rebalance" };

export const SOFTWARE_VERSION = "0.1.0";
