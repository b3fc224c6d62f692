/**
 * The second liveness channel end to end: an agent cut from Redis (its link refused by a
 * fault proxy) keeps heartbeating through PostgreSQL, so the leader neither declares it
 * dead nor moves its streams, and under ON_COORDINATION_LOSS=keep its worker keeps its
 * lease. Regression: before the channel existed, the leader moved its streams after
 * HEARTBEAT_TIMEOUT while `keep` kept its worker going (two workers on one stream).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../agent/agent.js";
import { assignmentBody } from "../../agent/http/worker.js";
import { newAgent } from "../helpers/agents.js";
import { FAST_TIMINGS, waitFor } from "../helpers/cluster.js";
import { FaultProxy } from "../helpers/fault-proxy.js";
import { REDIS_URL, createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";

describe("two liveness channels", { timeout: 90_000 }, () => {
  let db: TestDatabase;
  let proxy: FaultProxy;
  const agents: Agent[] = [];

  beforeAll(async () => {
    db = await createTestDatabase("second_channel");
    await createCatalog(db.sql, 20);
    proxy = await FaultProxy.start({ upstreamPort: Number(new URL(REDIS_URL).port || 6379), name: "b/redis" });
  });

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.close()));
    await proxy?.close();
    await db?.drop();
  });

  it("a member cut from Redis stays alive through PostgreSQL: nothing moves, its worker keeps its lease", async () => {
    const prefix = uniqueName("second");
    const a = newAgent({ id: "a", databaseUrl: db.url, prefix, env: { MAX_STREAMS: "20" } });
    agents.push(a);
    await a.start();
    await waitFor(() => a.elector.isLeader(), 30_000, "a to lead");
    const b = newAgent({ id: "b", databaseUrl: db.url, prefix, redisUrl: `redis://127.0.0.1:${proxy.port}`, env: { MAX_STREAMS: "20", ON_COORDINATION_LOSS: "keep" } });
    agents.push(b);
    await b.start();
    await waitFor(() => assignmentBody(b).streams.length === 10 && assignmentBody(a).streams.length === 10, 30_000, "an even split");
    const before = assignmentBody(b).streams.map((s) => s.id).sort();

    await proxy.refuse();
    const timeout = Number(FAST_TIMINGS.HEARTBEAT_TIMEOUT) * 1000;
    const until = Date.now() + 2 * timeout + 1000;
    while (Date.now() < until) {
      const view = a.membership?.members.get("b");
      expect(view?.status, "the leader's view of b").not.toBe("dead");
      const body = assignmentBody(b);
      expect(body.lease_ms, "b's worker keeps its lease").toBeGreaterThan(0);
      expect(body.streams.map((s) => s.id).sort()).toEqual(before);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(b.heartbeatChannels).toMatchObject({ redis: false, postgres: true });
    const rows = await db.sql`select count(*)::int as n from orchestrator.assignments where instance_id = 'b'`;
    expect(rows[0]!.n).toBe(10);
    await proxy.pass();
    await waitFor(() => b.heartbeatHealthy, 30_000, "b to reach Redis again");
  });
});
