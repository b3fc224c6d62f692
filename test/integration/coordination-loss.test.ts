/**
 * ON_COORDINATION_LOSS with in-process agents and a private Redis that we stop:
 * "keep" keeps the worker on its last assignment (its lease renewed by heartbeats
 * PostgreSQL confirms, the second liveness channel), "stop" lets the lease run out (the
 * worker stops); both serve again when Redis is back. With neither channel confirming,
 * keep stops too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../agent/agent.js";
import { assignmentBody } from "../../agent/http/worker.js";
import { newAgent } from "../helpers/agents.js";
import { FAST_TIMINGS, waitFor } from "../helpers/cluster.js";
import { FaultProxy } from "../helpers/fault-proxy.js";
import { PrivateRedis } from "../helpers/private-servers.js";
import { createCatalog, createTestDatabase, type TestDatabase } from "../helpers/services.js";

describe("ON_COORDINATION_LOSS", { timeout: 90_000 }, () => {
  let db: TestDatabase;
  let redis: PrivateRedis;
  const agents: Agent[] = [];
  const proxies: FaultProxy[] = [];

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
    await Promise.allSettled(proxies.map((p) => p.close()));
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

  it("keep renews only from a confirmed heartbeat: Redis hung AND PostgreSQL cut, the lease runs out", async () => {
    const pg = await FaultProxy.start({ upstreamPort: Number(new URL(db.url).port || 5432), name: "keep-2/pg" });
    proxies.push(pg);
    const url = new URL(db.url);
    url.port = String(pg.port);
    const cut = newAgent({ id: "keep-2", databaseUrl: url.toString(), redisUrl: redis.url, prefix: "loss", env: { ON_COORDINATION_LOSS: "keep", MAX_STREAMS: "20" } });
    agents.push(cut);
    await cut.start();
    await waitFor(() => assignmentBody(cut).streams.length > 0, 30_000, "the second keep agent to serve");
    const lease = Number(FAST_TIMINGS.WORKER_LEASE) * 1000;
    redis.freeze();
    try {
      // Redis hung, PostgreSQL still confirms: keep serves on (the deciders see it alive there).
      await new Promise((r) => setTimeout(r, 2 * lease + 500));
      expect(assignmentBody(cut).lease_ms).toBeGreaterThan(0);
      expect(cut.heartbeatChannels).toMatchObject({ redis: false, postgres: true });
      // Now neither channel confirms: the worker stops at its lease's end.
      await pg.blackhole();
      await new Promise((r) => setTimeout(r, 2 * lease + 500));
      const k = assignmentBody(cut);
      expect(k.streams).toEqual([]);
      expect(k.lease_ms).toBe(0);
    } finally {
      redis.thaw();
      await pg.pass();
    }
    await waitFor(() => assignmentBody(cut).streams.length > 0, 30_000, "the keep agent to serve again");
  });
});
