/**
 * An agent without a ready leader reads the whole membership only from
 * wholeViewLeaderlessMs (FALLBACK_GRACE − HEARTBEAT_TIMEOUT − HASH_SETTLE − HEARTBEAT_INTERVAL) after it
 * last saw one, then falls back to hashing at FALLBACK_GRACE with a view it has read whole
 * since (agent/beliefs.ts `decides`, agent/agent.ts wiring it to the offer's
 * lastLeaderSeenAt). Real agent, PostgreSQL and Redis; the lease is held by someone else,
 * so no leader ever becomes ready. The checks are lower bounds and an order, which a slow
 * machine cannot break.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import type { Agent } from "../../agent/agent.js";
import { systemClock } from "../../shared/clock.js";
import { Keys } from "../../shared/keys.js";
import { newAgent } from "../helpers/agents.js";
import { waitFor } from "../helpers/cluster.js";
import { REDIS_URL, createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";

describe("an agent without a ready leader", { timeout: 60_000 }, () => {
  let db: TestDatabase;
  let redis: Redis;
  let agent: Agent | undefined;
  const prefix = uniqueName("standby");

  beforeAll(async () => {
    db = await createTestDatabase("standby");
    await createCatalog(db.sql, 5);
    redis = new Redis(REDIS_URL);
    // Someone else holds the lease and never publishes a ready leader.
    await redis.set(new Keys(prefix).leader, "someone-else", "PX", 60_000);
  });

  afterAll(async () => {
    await agent?.close();
    await redis?.del(new Keys(prefix).leader);
    redis?.disconnect();
    await db?.drop();
  });

  it("watches the leader alone until a timeout, a settle and an interval before its fallback, then reads the whole membership, then hashes", async () => {
    const t0 = systemClock.now();
    agent = newAgent({ id: "standby-a", databaseUrl: db.url, prefix, env: { FALLBACK_GRACE: "8" } });
    const wholeAfter = agent.config.timings.wholeViewLeaderlessMs;
    expect(wholeAfter).toBe(8000 - 3000 - 1000 - 500);
    const samples: { at: number; whole: boolean | undefined; mode: string }[] = [];
    await agent.start();
    const a = agent;
    await waitFor(
      () => {
        samples.push({ at: Math.round(systemClock.now() - t0), whole: a.membership?.whole, mode: a.mode });
        return a.mode === "hashed";
      },
      40_000,
      "the fallback to hashing",
      100,
    );
    const history = () => samples.map((s) => `${s.at}:${s.whole === undefined ? "-" : s.whole ? "W" : "f"}:${s.mode[0]}`).join(" ");
    const firstFollowerRead = samples.findIndex((s) => s.whole === false);
    const firstWhole = samples.findIndex((s) => s.whole === true);
    const firstHashed = samples.findIndex((s) => s.mode === "hashed");
    expect(firstFollowerRead, history()).toBeGreaterThanOrEqual(0);
    expect(firstWhole, history()).toBeGreaterThan(firstFollowerRead);
    // Not before wholeViewLeaderlessMs since the agent was built (its grace counts from then at the earliest).
    expect(samples[firstWhole]!.at, history()).toBeGreaterThanOrEqual(wholeAfter);
    expect(firstWhole, history()).toBeLessThan(firstHashed);
    expect(samples[firstHashed]!.at, history()).toBeGreaterThanOrEqual(8000);
    expect(agent.elector.isLeader()).toBe(false);
  });
});
