/**
 * The agent's connections: three PostgreSQL pools and the Redis clients, opened together
 * and closed together.
 *
 * Guarantees: the PostgreSQL heartbeat has a connection of its own and operator reads a
 * small pool of their own, so neither queues behind the leader's or the agent's work; the
 * first Redis client carries heartbeats and the protocol, and every client (the first
 * included) takes part in the lease; a probe answers within its deadline; close ends
 * every one without throwing. Does not:
 * retry or reconnect (the clients do), or own the nudge subscriber (agent/nudges.ts).
 */
import type { Redis } from "ioredis";
import type { Clock } from "../shared/clock.js";
import type { Config } from "../shared/config.js";
import { probe, type Probe } from "../shared/deadline.js";
import { connect, type Sql } from "../shared/db.js";
import { closeRedis, createRedis, redisTargets } from "../shared/redis.js";

export interface Connections {
  /** The agent's and the leader's work: assignments, the catalog, the epoch. */
  readonly sql: Sql;
  readonly opsSql: Sql;
  /** One connection for the PostgreSQL heartbeat alone: it never queues behind other work. */
  readonly hbSql: Sql;
  /** Heartbeats, membership, nudges published. */
  readonly redis: Redis;
  /** The lease's quorum: `redis` first, then one client per further REDIS_URL. */
  readonly lockClients: Redis[];
}

export function openConnections(config: Config): Connections {
  const t = config.timings;
  // The pool of the leader's fenced writes: a session lost inside one must not hold the
  // leadership row (shared/timings.ts postgresIdleInTransactionMs).
  const sql = connect(config.databaseUrl, { max: 4, connectTimeout: t.postgresConnectTimeoutS, idleInTransactionMs: t.postgresIdleInTransactionMs });
  // Operator reads and health probes get their own small pool: a burst of /health or
  // /status calls while PostgreSQL is away must never queue in front of the leader's
  // epoch bump or the agent's own assignment reads.
  const opsSql = connect(config.databaseUrl, { max: 2, connectTimeout: 2 });
  const hbSql = connect(config.databaseUrl, { max: 1, connectTimeout: t.postgresConnectTimeoutS });
  const redisAt = redisTargets(config);
  const redis = createRedis(redisAt[0]!, { commandTimeoutMs: t.redisCommandTimeoutMs });
  const lockClients = [redis, ...redisAt.slice(1).map((at) => createRedis(at, { commandTimeoutMs: t.redisCommandTimeoutMs }))];
  return { sql, opsSql, hbSql, redis, lockClients };
}

/** Closes the Redis clients, then ends the pools (waiting at most 2 s each). */
/** PostgreSQL (the operator pool) and Redis, each answering within `timeoutMs` or a failure. */
export async function probeConnections(c: Connections, clock: Clock, timeoutMs: number): Promise<{ postgres: Probe; redis: Probe }> {
  const [postgres, redis] = await Promise.all([probe(clock, () => c.opsSql`select 1`, timeoutMs), probe(clock, () => c.redis.ping(), timeoutMs)]);
  return { postgres, redis };
}

export async function closeConnections(c: Connections): Promise<void> {
  for (const r of c.lockClients) await closeRedis(r);
  await Promise.all([c.sql, c.opsSql, c.hbSql].map((p) => p.end({ timeout: 2 }).catch(() => {})));
}
