/**
 * Redis's own wall clock is stepped while the cluster runs: every agent reaches a private
 * redis-server run under libfaketime (test/helpers/fault-clock.ts). The clock jumps 60 s
 * forward, which expires every key early (heartbeat keys, the leader lease, the leader
 * info: each has a TTL of a few seconds), stays there 4 s, then jumps back to the real
 * time — a 60 s backward step, after which keys written meanwhile outlive their TTL by
 * 60 s. The history records Redis's TIME after each step and a probe key with a 30 s TTL
 * written before the forward step (gone after it: expiry follows the stepped clock).
 *
 * Checked from the workers' records: zero overlap, every gap within HEARTBEAT_TIMEOUT +
 * 2 s + LEADER_LEASE_TTL (+ slack) (the lease may move), one worker per stream with
 * /status in agreement within 15 s of the backward step and again 5 s after it. A machine without libfaketime
 * fails here with the package to install (Debian: faketime).
 */
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { ClockedRedis, findLibfaketime } from "../helpers/fault-clock.js";
import { describeScenario, LEADER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

async function probe(url: string, f: (r: Redis) => Promise<unknown>): Promise<unknown> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on("error", () => {});
  try {
    await r.connect();
    return await f(r);
  } finally {
    r.disconnect();
  }
}

describeScenario({
  name: "Redis's wall clock stepped 60 s forward, then 60 s back",
  gapBoundMs: LEADER_GAP_MS,
  holdMs: 5000,
  async servers() {
    const redis = await ClockedRedis.start();
    return { redis, redisUrl: redis.url, stop: () => redis.stop() };
  },
  async run(fc, s) {
    const redis = s!.redis;
    await fc.leader();
    await probe(redis.url, (r) => r.set("fault-probe", "1", "PX", 30_000));
    await sleep(1000);
    const seenAhead = await redis.step(60);
    const firstFault = fc.log.now();
    const ttl = await probe(redis.url, (r) => r.pttl("fault-probe"));
    fc.log.event(`FAULT Redis's clock stepped +60 s (TIME now ${seenAhead.toFixed(1)} s ahead); a 30 s probe key set before it: PTTL ${String(ttl)}`, firstFault);
    if (ttl !== -2) throw new Error(`the probe key should have expired with the forward step, PTTL is ${String(ttl)}`);
    await sleep(4000);
    const seenBack = await redis.step(0);
    const lastHeal = fc.log.now();
    fc.log.event(`HEAL Redis's clock stepped back 60 s (TIME now ${seenBack.toFixed(1)} s off)`, lastHeal);
    return { firstFault, lastHeal };
  },
});

describe("libfaketime missing", () => {
  it("is an error naming the Debian package, not a skip", () => {
    expect(() => findLibfaketime(["/nonexistent/faketime"])).toThrow(/libfaketime is required .* apt-get install faketime/);
  });
});
