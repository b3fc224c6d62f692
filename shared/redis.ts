/**
 * Redis connections (ioredis 6): the one factory for every client the agent opens (the
 * heartbeat/command client, the lease clients, the pub/sub subscriber), from a URL or
 * from Redis Sentinel settings.
 *
 * Options chosen so a dead Redis fails commands fast instead of queueing them for ~74 s
 * (ioredis' default): heartbeats and the lease must learn within a fraction of
 * HEARTBEAT_INTERVAL that Redis is gone.
 *
 * Under Sentinel, ioredis asks the sentinels for the master, checks the role of the node
 * it reached, and asks again on every reconnect. Two more things keep a client off a
 * demoted or stale primary:
 * - reconnectOnError: a READONLY reply (this node is a replica now) or another failover
 *   reply drops the connection so the next attempt asks the sentinels again. The command
 *   itself still fails (returning 1, not 2: no queued resend behind our back), so the
 *   heartbeat that met it is a failed heartbeat.
 * - failoverDetector: the client also listens to the sentinels' +switch-master and
 *   reconnects at once. Without it a client connected to the old primary keeps writing
 *   there (its writes later lost) until that node is converted, seconds later.
 * - an "end" we did not ask for is undone: ioredis 6 ends a Sentinel client for good
 *   when the failover detector of its previous connection fires while a reconnect is
 *   still asking the sentinels (SentinelConnector.connect throws "Connection is
 *   closed." and Redis#_connect sets status "end"). Left alone, that agent would never
 *   reach Redis again while the rest of the fleet does.
 */
import { Redis, type RedisOptions as IORedisOptions } from "ioredis";
import type { Config, RedisSentinelConfig } from "./config.js";

export interface RedisOptions {
  /** Per-command timeout in ms; keep it well under HEARTBEAT_INTERVAL. */
  readonly commandTimeoutMs: number;
  /** Pub/sub connections must queue their SUBSCRIBE while reconnecting. */
  readonly subscriber?: boolean;
}

/** Where a client connects: one Redis URL, or the master of a Sentinel group. */
export type RedisTarget = string | { readonly sentinel: RedisSentinelConfig };

/**
 * The targets of the lease's Redlock clients; the FIRST one also carries heartbeats,
 * membership and nudges. With sentinels there is exactly one.
 */
export function redisTargets(config: Pick<Config, "redisUrls" | "redisSentinel">): RedisTarget[] {
  return config.redisSentinel ? [{ sentinel: config.redisSentinel }] : [...config.redisUrls];
}

/** Replies that mean the node we talk to is not (or no longer) a writable master. */
export const FAILOVER_REPLY = /^(READONLY|MASTERDOWN|LOADING|NOREPLICAS)\b|-(READONLY|NOREPLICAS)\b/;

/** ioredis' reconnectOnError: 1 = reconnect and fail the command (2 would only fail it as "Stream isn't writeable", offline queue being off). */
export function reconnectOnFailoverReply(err: Error): boolean | 1 {
  return FAILOVER_REPLY.test(err.message) ? 1 : false;
}

/** Clients closed on purpose (closeRedis); any other "end" is reconnected. */
const closedOnPurpose = new WeakSet<Redis>();
const RECONNECT_AFTER_END_MS = 200;

export function createRedis(target: RedisTarget, opts: RedisOptions): Redis {
  const common: IORedisOptions = {
    lazyConnect: false,
    protocol: 2,
    maxRetriesPerRequest: opts.subscriber ? null : 1,
    enableOfflineQueue: !!opts.subscriber,
    commandTimeout: opts.subscriber ? undefined : opts.commandTimeoutMs,
    connectTimeout: Math.max(1000, opts.commandTimeoutMs * 2),
    // Reconnect quickly and forever; the agent decides what an outage means.
    retryStrategy: (times) => Math.min(100 * times, 1000),
    reconnectOnError: reconnectOnFailoverReply,
    enableAutoPipelining: false,
  };
  const client =
    typeof target === "string"
      ? new Redis(target, common)
      : new Redis({
          ...common,
          sentinels: target.sentinel.sentinels.map((s) => ({ host: s.host, port: s.port })),
          name: target.sentinel.name,
          role: "master",
          password: target.sentinel.password,
          sentinelPassword: target.sentinel.sentinelPassword,
          sentinelCommandTimeout: Math.max(500, opts.commandTimeoutMs),
          // All sentinels unreachable: ask again soon, forever (the default gives up).
          sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
          failoverDetector: true,
        });
  // Connection errors surface through failing commands; an unhandled 'error' event
  // would otherwise crash the process.
  client.on("error", () => {});
  client.on("end", () => {
    if (closedOnPurpose.has(client)) return;
    const timer = setTimeout(() => {
      if (!closedOnPurpose.has(client) && client.status === "end") client.connect().catch(() => {});
    }, RECONNECT_AFTER_END_MS);
    timer.unref();
  });
  return client;
}

/** Closes a client without throwing (it may already be closed or unreachable). */
export async function closeRedis(client: Redis): Promise<void> {
  closedOnPurpose.add(client);
  try {
    await client.quit();
  } catch {
    // quit fails when the connection is already gone; disconnect() below covers it.
  }
  client.disconnect();
}
