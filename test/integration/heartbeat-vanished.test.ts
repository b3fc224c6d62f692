/**
 * An agent whose heartbeat record disappears from Redis while it beats (its fields of the
 * cluster hash deleted, evicted, pruned, or lost in a failover) was possibly seen absent
 * by the others: it withdraws and resyncs, and serves again under a new session
 * generation once the leader rewrote its rows. The signal is `sessionNow`, which changes
 * with every resync.
 */
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../agent/agent.js";
import { Keys } from "../../shared/keys.js";
import { newAgent } from "../helpers/agents.js";
import { waitFor } from "../helpers/cluster.js";
import { clearPrefix, connectTestRedis, createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";

describe("a vanished heartbeat record", { timeout: 60_000 }, () => {
  const keys = new Keys(uniqueName("vanished"));
  let db: TestDatabase;
  let redis: Redis;
  let agent: Agent;

  beforeAll(async () => {
    db = await createTestDatabase("vanished");
    await createCatalog(db.sql, 3);
    redis = await connectTestRedis();
    agent = newAgent({ id: "v1", databaseUrl: db.url, prefix: keys.prefix });
    await agent.start();
  });

  afterAll(async () => {
    await agent?.close();
    if (redis) {
      await clearPrefix(redis, keys.prefix);
      redis.disconnect();
    }
    await db?.drop();
  });

  it("makes the agent withdraw and resync, then serve again", async () => {
    await waitFor(() => agent.heartbeatHealthy && agent.worker.serving.streams.length === 3, 30_000, "the agent to serve its streams");
    const session = agent.sessionNow;
    // Beating normally does not resync (the control for the check below).
    await new Promise((r) => setTimeout(r, 1500));
    expect(agent.sessionNow).toBe(session);

    expect(await redis.hdel(keys.cluster, "hb:v1", "hbid:v1")).toBe(2);
    await waitFor(() => agent.sessionNow !== session, 5000, "a resync after the record vanished");
    await waitFor(() => agent.heartbeatHealthy && agent.worker.serving.streams.length === 3, 30_000, "the agent to serve again");
    expect(agent.sessionNow).not.toBe(session);
  });
});
