/**
 * The heartbeat step (agent/heartbeat.ts) on the manual clock: which confirmations renew
 * the worker's lease (a Redis confirmation only from the Redis the deciders read), and
 * when a freeze or a lapsed lease forces a resync.
 */
import { describe, expect, it } from "vitest";
import { countsForDeciders, HeartbeatLoop, renews, type HeartbeatReply } from "../../agent/heartbeat.js";
import { Serving } from "../../agent/serving.js";
import { ManualClock } from "../../shared/clock.js";
import { silentLogger } from "../../shared/logger.js";
import { Metrics } from "../../shared/metrics.js";
import type { Heartbeat } from "../../shared/types.js";

const LEASE = 3_000;

function harness(policy: "keep" | "stop" = "stop") {
  const clock = new ManualClock(10_000);
  const serving = new Serving(clock, LEASE, 5_000);
  const down = { redis: false, postgres: false };
  /** The Redis this agent writes to, and the one the leader recorded in PostgreSQL. */
  const redis = { incarnation: "i1", deciders: null as string | null };
  let existed = true;
  let resyncing = false;
  const resyncs: string[] = [];
  const metrics = new Metrics({ instance: "t" });
  const loop = new HeartbeatLoop({
    clock, logger: silentLogger(), metrics, serving, workerLeaseMs: LEASE, policy,
    sendRedis: async (): Promise<HeartbeatReply> => {
      await clock.sleep(0);
      if (down.redis) throw new Error("connect ECONNREFUSED 127.0.0.1:6379");
      return { existed, version: 0, flag: undefined, incarnation: redis.incarnation, leader: undefined, leaderMark: undefined, feedId: "1-0" };
    },
    sendPostgres: async () => {
      await clock.sleep(0);
      if (down.postgres) throw new Error("PostgreSQL heartbeat: no answer within 800 ms");
      return { deciderRedis: redis.deciders };
    },
    build: () => ({ held: [] }) as unknown as Heartbeat,
    resyncing: () => resyncing,
    requireResync: (_now, why) => {
      resyncing = true;
      resyncs.push(why);
      serving.expire();
    },
    onReply: () => {},
    onReleased: () => {},
  });
  const beat = async () => {
    const p = loop.beat();
    await clock.advance(0);
    await p;
  };
  return {
    clock, serving, loop, resyncs, beat, down, metrics, redis,
    keyGone() { existed = false; },
    resynced() { resyncing = false; },
  };
}

describe("renews", () => {
  it("a Redis confirmation always renews; PostgreSQL alone only under keep; nothing confirmed never", () => {
    for (const policy of ["keep", "stop"] as const) {
      expect(renews(policy, { redis: true, postgres: false })).toBe(true);
      expect(renews(policy, { redis: false, postgres: false })).toBe(false);
    }
    expect(renews("keep", { redis: false, postgres: true })).toBe(true);
    expect(renews("stop", { redis: false, postgres: true })).toBe(false);
  });
});

describe("HeartbeatLoop", () => {
  it("renews the lease from a confirmed beat, timed from before it was sent", async () => {
    const h = harness();
    const sentAt = h.clock.now();
    await h.beat();
    expect(h.serving.leaseDeadline).toBe(sentAt + LEASE);
    expect(h.loop.channels).toEqual({ redis: true, postgres: true });
    expect(await h.metrics.registry.getSingleMetricAsString("fingerv7_heartbeats_total")).toContain('channel="postgres",result="ok"');
  });

  it("keep: Redis refused but PostgreSQL confirmed renews; both down never renews (the old keep did)", async () => {
    const h = harness("keep");
    await h.beat();
    await h.clock.advance(1_000);
    h.down.redis = true;
    await h.beat();
    expect(h.serving.leaseDeadline).toBe(h.clock.now() + LEASE);
    expect(h.loop.healthy).toBe(false);
    await h.clock.advance(1_000);
    h.down.postgres = true;
    const deadline = h.serving.leaseDeadline;
    await h.beat();
    expect(h.serving.leaseDeadline).toBe(deadline);
    await h.clock.advance(3_000);
    await h.beat();
    expect(h.resyncs).toEqual(["worker lease lapsed"]);
  });

  it("stop: PostgreSQL alone does not renew; the lease runs out and the next beat resyncs", async () => {
    const h = harness("stop");
    await h.beat();
    const deadline = h.serving.leaseDeadline;
    await h.clock.advance(1_000);
    h.down.redis = true;
    await h.beat();
    expect(h.serving.leaseDeadline).toBe(deadline);
    await h.clock.advance(2_500);
    await h.beat();
    expect(h.resyncs).toEqual(["worker lease lapsed"]);
  });

  it("a gap between two attempts longer than the lease (a freeze) forces a resync", async () => {
    const h = harness("keep");
    await h.beat();
    await h.clock.advance(LEASE + 1);
    await h.beat();
    expect(h.resyncs[0]).toBe("heartbeat gap longer than the worker lease");
    // While resyncing, even a confirmed beat does not renew.
    expect(h.serving.leaseDeadline).toBe(0);
    h.resynced();
    await h.beat();
    expect(h.serving.leaseValid()).toBe(true);
  });

  it("our Redis record gone, or Redis seeing us silent, while we were live (same Redis) forces a resync", async () => {
    const h = harness();
    await h.beat();
    await h.clock.advance(500);
    h.keyGone();
    await h.beat();
    expect(h.resyncs).toEqual(["our heartbeat vanished from Redis, or Redis saw us silent, while we were live"]);
  });
});

describe("a Redis confirmation counts only from the Redis the deciders read", () => {
  it("the rule: any Redis while no leader recorded one, else only that incarnation", () => {
    expect(countsForDeciders("a", null)).toBe(true);
    expect(countsForDeciders("a", undefined)).toBe(true);
    expect(countsForDeciders("a", "a")).toBe(true);
    expect(countsForDeciders("a", "b")).toBe(false);
  });

  it("cut from PostgreSQL while writing to another Redis: the lease is not renewed and lapses", async () => {
    const h = harness("keep");
    h.redis.deciders = "i1";
    await h.beat();
    expect(h.loop.channels).toEqual({ redis: true, postgres: true });
    // Our Redis link now reaches another Redis (a different REDIS_URL, a stale primary), and
    // PostgreSQL is cut: the last recorded value still applies.
    h.redis.incarnation = "other";
    h.down.postgres = true;
    const deadline = h.serving.leaseDeadline;
    await h.clock.advance(500);
    await h.beat();
    expect(h.serving.leaseDeadline).toBe(deadline);
    expect(h.loop.channels).toEqual({ redis: false, postgres: false });
    expect(h.loop.report(h.clock.now(), 5_000).redisOk).toBe(false);
    expect(h.loop.error).toContain("not the one the deciders read");
    expect(await h.metrics.registry.getSingleMetricAsString("fingerv7_heartbeats_total")).toContain('channel="redis",result="failed"');
    await h.clock.advance(LEASE);
    await h.beat();
    expect(h.serving.leaseValid()).toBe(false);
    expect(h.resyncs).toEqual(["worker lease lapsed"]);
  });

  it("the same Redis renews without PostgreSQL; before any leader recorded one, every Redis does (today's rule)", async () => {
    const h = harness("stop");
    await h.beat();
    h.redis.incarnation = "other";
    await h.clock.advance(500);
    await h.beat();
    expect(h.serving.leaseDeadline).toBe(h.clock.now() + LEASE);
    h.redis.deciders = "other";
    h.down.postgres = true;
    await h.clock.advance(500);
    await h.beat();
    expect(h.serving.leaseDeadline).toBe(h.clock.now() + LEASE);
  });

  it("stop: another Redis renews while PostgreSQL confirms the same beat (a restarted Redis not recorded yet), not once PostgreSQL is cut", async () => {
    const h = harness("stop");
    h.redis.deciders = "i1";
    h.redis.incarnation = "other";
    await h.beat();
    expect(h.serving.leaseDeadline).toBe(h.clock.now() + LEASE);
    expect(h.loop.channels).toEqual({ redis: false, postgres: true });
    h.down.postgres = true;
    const deadline = h.serving.leaseDeadline;
    await h.clock.advance(500);
    await h.beat();
    expect(h.serving.leaseDeadline).toBe(deadline);
    h.down.postgres = false;
    h.redis.deciders = "other";
    await h.clock.advance(500);
    await h.beat();
    expect(h.loop.channels).toEqual({ redis: true, postgres: true });
  });
});
