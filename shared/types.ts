/** Types that cross the agent/leader boundary or travel through Redis and Postgres. */

/** Stream ids are kept as text: the production catalog's `index` column may be text or integer. */
export type StreamId = string;

export interface Stream {
  readonly id: StreamId;
  readonly url: string;
  readonly name: string;
  /** Every other catalog column, passed through to the worker. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

export type Mode = "orchestrated" | "hashed";

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
