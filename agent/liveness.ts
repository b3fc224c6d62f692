/**
 * The two liveness channels as this agent uses them, wired in one place: the heartbeat it
 * writes to Redis and to PostgreSQL (agent/heartbeat.ts decides what a confirmation
 * renews), and the membership tracker that reads everyone's from both
 * (shared/membership.ts decides who is dead).
 *
 * The tracker reads the whole membership only while `decider` says so; otherwise it
 * follows the leader through this agent's own heartbeat replies (shared/membership.ts):
 * Redis's reply, and the leader's PostgreSQL row that the heartbeat's write reads back.
 *
 * Guarantees: every write and every PostgreSQL read has a deadline shorter than a
 * heartbeat, so a blackholed link counts as a failed (or unread) channel instead of a
 * step that hangs; the payload carries what deciders need to judge this member (its
 * timeouts, what it holds, which channels it reached).
 * It does not schedule anything: the agent's loops call beat() and refresh().
 */
import os from "node:os";
import type { Clock } from "../shared/clock.js";
import type { Config } from "../shared/config.js";
import type { Sql } from "../shared/db.js";
import { withTimeout } from "../shared/deadline.js";
import type { Logger } from "../shared/logger.js";
import { MembershipTracker } from "../shared/membership.js";
import type { Metrics } from "../shared/metrics.js";
import { PgHeartbeats } from "../shared/pg-heartbeats.js";
import type { RedisProtocol } from "../shared/redis-protocol.js";
import { SOFTWARE_VERSION, type Heartbeat } from "../shared/types.js";
import { HeartbeatLoop, type HeartbeatDeps } from "./heartbeat.js";

/** What the agent contributes to each heartbeat: its state as of `now`. */
export type HeartbeatState = Omit<Heartbeat, "id" | "seq" | "ttlMs" | "leaseMs" | "useOrchestrator" | "pgOk" | "redisOk" | "pgCut" | "host" | "location" | "software" | "startedAt">;

export interface LivenessDeps extends Pick<HeartbeatDeps, "serving" | "resyncing" | "requireResync" | "onReply" | "onReleased"> {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The pool the tracker reads the PostgreSQL heartbeats with. */
  readonly sql: Sql;
  /** The connection this agent's PostgreSQL heartbeats are written on (theirs alone). */
  readonly hbSql: Sql;
  readonly protocol: RedisProtocol;
  readonly startedAtWall: number;
  state(now: number): HeartbeatState;
  /** Whether this agent decides now (leads, hashes, or may soon): only then does it read the whole membership. */
  decider(): boolean;
}

export interface Liveness {
  readonly tracker: MembershipTracker;
  readonly heartbeat: HeartbeatLoop;
  readonly pgHeartbeats: PgHeartbeats;
}

/**
 * The membership tracker an agent (or a benchmark's leader) reads with: both liveness
 * channels, the PostgreSQL one bounded by a deadline. A blackholed PostgreSQL answers
 * nothing, ever: past the deadline the channel counts as unread (nobody new is declared
 * dead), and the Redis view still comes through.
 */
export function createTracker(config: Config, clock: Clock, protocol: RedisProtocol, reader: PgHeartbeats, decider: () => boolean): MembershipTracker {
  const t = config.timings;
  return new MembershipTracker({
    protocol,
    pg: {
      readAll: () => withTimeout(clock, reader.readAll(t.memberForgetMs), t.heartbeatReadTimeoutMs, "PostgreSQL heartbeats read"),
      readSome: (ids) => withTimeout(clock, reader.readSome(ids, t.memberForgetMs), t.heartbeatReadTimeoutMs, "PostgreSQL heartbeats read"),
    },
    clock,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
    heartbeatWarningMs: config.heartbeatWarningMs,
    maxGapMs: t.trackerMaxGapMs,
    requireWorker: config.requireWorker,
    decider,
  });
}

export function createLiveness(d: LivenessDeps): Liveness {
  const { config, clock } = d;
  const t = config.timings;
  const pgHeartbeats = new PgHeartbeats(d.hbSql, config.schema);
  const reader = new PgHeartbeats(d.sql, config.schema);
  const tracker = createTracker(config, clock, d.protocol, reader, d.decider);
  let seq = 0;
  const heartbeat: HeartbeatLoop = new HeartbeatLoop({
    clock,
    logger: d.logger.child({ component: "heartbeat" }),
    metrics: d.metrics,
    serving: d.serving,
    workerLeaseMs: config.workerLeaseMs,
    policy: config.onCoordinationLoss,
    sendRedis: (hb) => d.protocol.heartbeat(hb, config.heartbeatTimeoutMs),
    // A follower's write also reads the leader's heartbeat: the tracker's PostgreSQL read, without a round trip of its own.
    sendPostgres: async (hb) => {
      const ids = tracker.pgWatch();
      const sentAt = clock.now();
      const written = await withTimeout(clock, pgHeartbeats.write(hb, ids.length > 0 ? { ids, maxAgeMs: t.memberForgetMs } : undefined), t.heartbeatWriteTimeoutMs, "PostgreSQL heartbeat");
      if (written.watched) tracker.observePgReply(ids, written.watched, clock.now(), sentAt);
      return written;
    },
    build: (now) => ({
      ...d.state(now),
      id: config.instanceId,
      seq: ++seq,
      ttlMs: config.heartbeatTimeoutMs,
      leaseMs: config.workerLeaseMs,
      useOrchestrator: config.useOrchestrator,
      ...heartbeat.report(now, config.heartbeatTimeoutMs),
      startedAt: new Date(d.startedAtWall).toISOString(),
      host: os.hostname(),
      location: config.location,
      software: SOFTWARE_VERSION,
    }),
    resyncing: d.resyncing,
    requireResync: d.requireResync,
    onReply: (reply, hb) => {
      tracker.observeReply(reply, clock.now());
      d.onReply(reply, hb);
    },
    onReleased: d.onReleased,
  });
  return { tracker, heartbeat, pgHeartbeats };
}
