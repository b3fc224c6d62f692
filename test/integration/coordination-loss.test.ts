/**
 * ON_COORDINATION_LOSS with in-process agents and a private Redis that we stop:
 * "keep" keeps the worker on its last assignment (lease still renewed), "stop" lets the
 * lease run out (the worker stops); both serve again when Redis is back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../agent/agent.js";
import { assignmentBody } from "../../agent/http/worker.js";
import { newAgent } from "../helpers/agents.js";
import { FAST_TIMINGS, waitFor } from "../helpers/cluster.js";
import { PrivateRedis } from "../helpers/private-servers.js";
import { createCatalog, createTestDatabase, type TestDatabase } from "../helpers/services.js";

describe("ON_COORDINATION_LOSS", { timeout: 90_000 }, () => {
  let db: TestDatabase;
  let redis: PrivateRedis;
  const agents: Agent[] = [];

  function agent(id: string, policy: "keep" | "stop"): Agent {
    const a = newAgent({ id, databaseUrl: db.url, redisUrl: redis.url, prefix: "loss", env: { ON_COORDINATION_LOSS: policy, MAX_STREAMS: "20" } });
    agents.push(a);
    return a;
  }

  beforeAll(async () => {
    db = await createTestDatabase("coordloss");
    await createCatalog(db.sql, 20);
    redis = await PrivateRedis.start();
  });

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.close()));
    await redis?.stop();
    await db?.drop();
  });

  it("keep serves through a Redis outage; stop withdraws after the lease and resumes afterwards", async () => {
    const keep = agent("keep-1", "keep");
    const stop = agent("stop-1", "stop");
    await Promise.all([keep.start(), stop.start()]);
    const offered = (a: Agent) => assignmentBody(a).streams.length;
    await waitFor(() => offered(keep) > 0 && offered(stop) > 0 && offered(keep) + offered(stop) === 20, 30_000, "both agents to serve");
    const keepBefore = offered(keep);

    await redis.down();
    const lease = Number(FAST_TIMINGS.WORKER_LEASE) * 1000;
    await new Promise((r) => setTimeout(r, 2 * lease + 500));
    const k = assignmentBody(keep);
    const s = assignmentBody(stop);
    expect(k.streams.length).toBe(keepBefore);
    expect(k.lease_ms).toBeGreaterThan(0);
    expect(s.streams).toEqual([]);
    expect(s.lease_ms).toBe(0);
    expect(keep.heartbeatHealthy).toBe(false);

    await redis.up();
    await waitFor(() => offered(stop) > 0 && offered(keep) + offered(stop) === 20, 30_000, "the stop agent to serve again");
    expect(assignmentBody(stop).lease_ms).toBeGreaterThan(0);
  });

  it("keep does not renew on timed-out heartbeats (Redis hung, or this agent starved): the lease runs out", async () => {
    const [keep] = agents;
    await waitFor(() => assignmentBody(keep!).streams.length > 0, 30_000, "the keep agent to serve");
    redis.freeze();
    try {
      const lease = Number(FAST_TIMINGS.WORKER_LEASE) * 1000;
      await new Promise((r) => setTimeout(r, 2 * lease + 500));
      const k = assignmentBody(keep!);
      expect(k.streams).toEqual([]);
      expect(k.lease_ms).toBe(0);
    } finally {
      redis.thaw();
    }
    await waitFor(() => assignmentBody(keep!).streams.length > 0, 30_000, "the keep agent to serve again");
  });
});
