/**
 * The duplicate-instance check at start (agent/startup.ts) against a real Redis: a twin
 * whose heartbeats keep coming under this INSTANCE_ID stops the start; a predecessor
 * that stopped beating, or announced it is leaving, does not; neither does nobody.
 */
import type { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { checkDuplicate, DuplicateInstanceError } from "../../agent/startup.js";
import { systemClock } from "../../shared/clock.js";
import { loadConfig } from "../../shared/config.js";
import { Keys } from "../../shared/keys.js";
import { RedisProtocol } from "../../shared/redis-protocol.js";
import type { Heartbeat } from "../../shared/types.js";
import { FAST_TIMINGS } from "../helpers/cluster.js";
import { clearPrefix, connectTestRedis, REDIS_URL, uniqueName } from "../helpers/services.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the duplicate-instance check", { timeout: 20_000 }, () => {
  const keys = new Keys(uniqueName("duplicate"));
  const config = loadConfig({ ...FAST_TIMINGS, DATABASE_URL: "postgres://change-me@127.0.0.1/none", REDIS_URL, REDIS_KEY_PREFIX: keys.prefix, INSTANCE_ID: "twin" });
  let redis: Redis;
  let protocol: RedisProtocol;

  beforeAll(async () => {
    redis = await connectTestRedis();
  });
  beforeEach(async () => {
    await clearPrefix(redis, keys.prefix);
    protocol = new RedisProtocol(redis, keys);
  });
  afterAll(async () => {
    await clearPrefix(redis, keys.prefix);
    redis.disconnect();
  });

  const check = () => checkDuplicate({ config, clock: systemClock, protocol, session: "me" });
  /** Another process beating as "twin" every HEARTBEAT_INTERVAL until stopped. */
  function twin(extra: Partial<Heartbeat> = {}, beat?: () => Promise<unknown>) {
    const p = new RedisProtocol(redis, keys);
    let seq = 0;
    let on = true;
    const send = beat ?? (() => p.heartbeat({ id: "twin", seq: ++seq, session: "other", ttlMs: 3000, held: [], host: "elsewhere", ...extra } as unknown as Heartbeat, 3000));
    const loop = (async () => {
      while (on) {
        await send();
        await sleep(config.heartbeatIntervalMs);
      }
    })();
    return async () => {
      on = false;
      await loop;
    };
  }

  it("nobody beating as this id: starts", async () => {
    await check();
  });

  it("a live twin: refuses, naming its host", async () => {
    const stop = twin();
    try {
      await sleep(100);
      await expect(check()).rejects.toThrow(DuplicateInstanceError);
      await expect(check()).rejects.toThrow(/heartbeating from elsewhere/);
    } finally {
      await stop();
    }
  });

  it("a twin of the version before this one (feed entries, no heartbeat stored in the cluster hash): refuses", async () => {
    const stop = twin({}, () => redis.xadd(keys.feed, "*", "id", "twin", "c", "0"));
    try {
      await sleep(100);
      await expect(check()).rejects.toThrow(DuplicateInstanceError);
    } finally {
      await stop();
    }
  });

  it("a predecessor that stopped beating, or one that announced it is leaving: starts", async () => {
    const stop = twin();
    await sleep(100);
    await stop();
    await sleep(config.timings.duplicateSilentMs + 100);
    const started = Date.now();
    await check();
    expect(Date.now() - started).toBeLessThan(config.timings.duplicateWatchMs); // no watch needed
    const leaving = twin({ leaving: true });
    try {
      await sleep(100);
      await check();
    } finally {
      await leaving();
    }
  });
});
