/**
 * Redis connections (ioredis 6). Options chosen so a dead Redis fails commands fast
 * instead of queueing them for ~74 s (ioredis' default): heartbeats and the lease must
 * learn within a fraction of HEARTBEAT_INTERVAL that Redis is gone.
 */
import { Redis } from "ioredis";

export interface RedisOptions {
  /** Per-command timeout in ms; keep it well under HEARTBEAT_INTERVAL. */
  readonly commandTimeoutMs: number;
  /** Pub/sub connections must queue their SUBSCRIBE while reconnecting. */
  readonly subscriber?: boolean;
}

export function createRedis(url: string, opts: RedisOptions): Redis {
  const client = new Redis(url, {
    lazyConnect: false,
    protocol: 2,
    maxRetriesPerRequest: opts.subscriber ? null : 1,
    enableOfflineQueue: !!opts.subscriber,
    commandTimeout: opts.subscriber ? undefined : opts.commandTimeoutMs,
    connectTimeout: Math.max(1000, opts.commandTimeoutMs * 2),
    // Reconnect quickly and forever; the agent decides what an outage means.
    retryStrategy: (times) => Math.min(100 * times, 1000),
    enableAutoPipelining: false,
  });
  // Connection errors surface through failing commands; an unhandled 'error' event
  // would otherwise crash the process.
  client.on("error", () => {});
  return client;
}

/** Closes a client without throwing (it may already be closed or unreachable). */
export async function closeRedis(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    // quit fails when the connection is already gone; disconnect() below covers it.
  }
  client.disconnect();
}
