/**
 * The leader info through the Redis protocol, on a real Redis and a manual local clock:
 * written only under the lease token, into the cluster hash and the old key; cleared by
 * its leader; LIVE in replies only while it keeps changing (shared/leader-watch.ts); the
 * old key of a leader of the version before the cluster hash still counts.
 */
import type { Redis } from "ioredis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../shared/clock.js";
import { Keys } from "../../shared/keys.js";
import { RedisProtocol } from "../../shared/redis-protocol.js";
import type { Heartbeat, LeaderInfo } from "../../shared/types.js";
import { clearPrefix, connectTestRedis, uniqueName } from "../helpers/services.js";

const TTL = 5000;
const L: LeaderInfo = { id: "L", epoch: 3, ready: true };

let seq = 0;
const hb = (id: string) => ({ id, seq: ++seq, session: `s-${id}`, ttlMs: TTL, held: [], worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" } }) as unknown as Heartbeat;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the leader info", () => {
  const keys = new Keys(uniqueName("leaderinfo"));
  let redis: Redis;
  let clock: ManualClock;
  /** The leader's protocol and a follower's, on one manual clock. */
  let leader: RedisProtocol;
  let follower: RedisProtocol;

  beforeAll(async () => {
    redis = await connectTestRedis();
  });
  beforeEach(async () => {
    await clearPrefix(redis, keys.prefix);
    clock = new ManualClock();
    leader = new RedisProtocol(redis, keys, { clock });
    follower = new RedisProtocol(redis, keys, { clock });
  });
  afterAll(async () => {
    await clearPrefix(redis, keys.prefix);
    redis.disconnect();
  });

  const named = async (p = follower) => (await p.heartbeat(hb("f"), TTL)).leader;

  it("publishLeader: writes only while the token holds the lease, into the cluster hash and the old key", async () => {
    expect(await leader.publishLeader("tok", L, TTL)).toBe(false);
    await redis.set(keys.leader, "tok", "PX", TTL);
    expect(await leader.publishLeader("other", L, TTL)).toBe(false);
    expect(await redis.hget(keys.cluster, "leader")).toBeNull();
    expect(await redis.exists(keys.leaderInfo)).toBe(0);
    expect(await leader.publishLeader("tok", L, TTL)).toBe(true);
    expect(JSON.parse((await redis.hget(keys.cluster, "leader"))!)).toEqual(L);
    // "<seq> <Redis ms> <the lease key's PTTL>": a new mark at every publication.
    const pub = (await redis.hget(keys.cluster, "leaderPub"))!.split(" ").map(Number);
    expect(Number.isInteger(pub[0])).toBe(true);
    expect(Math.abs(pub[1]! - Date.now())).toBeLessThan(60_000);
    expect(pub[2]).toBeGreaterThan(0);
    expect(pub[2]).toBeLessThanOrEqual(TTL);
    expect(JSON.parse((await redis.get(keys.leaderInfo))!)).toEqual(L);
    expect(await redis.pttl(keys.leaderInfo)).toBeGreaterThan(0);
    const seqNow = async () => Number((await redis.hget(keys.cluster, "leaderPub"))!.split(" ")[0]);
    // The same info again within a fifth of the TTL: not written (the leader calls at every tick).
    await clock.advance(TTL / 5 - 1);
    expect(await leader.publishLeader("tok", L, TTL)).toBe(true);
    expect(await seqNow()).toBe(pub[0]);
    // A fifth of the TTL later, or a changed info: written, with a new mark.
    await clock.advance(1);
    await leader.publishLeader("tok", L, TTL);
    const second = await seqNow();
    expect(second).toBeGreaterThan(pub[0]!);
    await leader.publishLeader("tok", { ...L, ready: false }, TTL);
    expect(await seqNow()).toBeGreaterThan(second);
  });

  it("clearLeader: removes it from both places only when it names the caller", async () => {
    await redis.set(keys.leader, "tok", "PX", TTL);
    await leader.publishLeader("tok", L, TTL);
    expect(await leader.clearLeader("other")).toBe(false);
    expect(await redis.hexists(keys.cluster, "leader")).toBe(1);
    expect(await redis.exists(keys.leaderInfo)).toBe(1);
    expect(await leader.clearLeader("L")).toBe(true);
    expect(await redis.hmget(keys.cluster, "leader", "leaderPub")).toEqual([null, null]);
    expect(await redis.exists(keys.leaderInfo)).toBe(0);
    expect(await leader.clearLeader("L")).toBe(false);
    expect(await named()).toBeUndefined();
  });

  it("is live while it keeps being republished; an info not republished for the lease's TTL is absent", async () => {
    await redis.set(keys.leader, "tok", "PX", TTL);
    await leader.publishLeader("tok", L, TTL);
    expect(await named()).toEqual(L);
    // The leader republishes (every TTL/5): still live well past one TTL.
    for (let i = 0; i < 8; i++) {
      await clock.advance(1000);
      await redis.pexpire(keys.leader, TTL); // its renewal
      await leader.publishLeader("tok", L, TTL);
      expect(await named()).toEqual(L);
    }
    // It stops (killed, or its lease lost: no more publications). The hash keeps the info,
    // but by our clock it has not changed for the lease's TTL: no leader.
    await clock.advance(TTL - 1500);
    expect(await named()).toEqual(L);
    expect(follower.liveLeader()).toEqual(L);
    await clock.advance(1500);
    expect(follower.liveLeader()).toBeUndefined();
    expect(await named()).toBeUndefined();
    expect((await follower.snapshot(true)).leader).toBeUndefined();
    // A new publication makes it live again.
    await redis.set(keys.leader, "tok", "PX", TTL);
    await leader.publishLeader("tok", L, TTL);
    expect(await named()).toEqual(L);
  });

  it("an agent that starts beside a dead leader's info sees no leader at once (its age by Redis's clock)", async () => {
    await redis.set(keys.leader, "tok", "PX", 40);
    await leader.publishLeader("tok", L, TTL); // live for the lease's 40 ms left
    const fresh = new RedisProtocol(redis, keys, { clock });
    expect(await named(fresh)).toEqual(L);
    await sleep(60);
    expect(await named(new RedisProtocol(redis, keys, { clock }))).toBeUndefined();
    expect((await new RedisProtocol(redis, keys, { clock }).snapshot(true)).leader).toBeUndefined();
  });

  it("a leader of the version before the cluster hash (the old key alone) is seen; that leader's own copy of a stale info is not", async () => {
    await redis.set(keys.leaderInfo, JSON.stringify({ id: "old", epoch: 2, ready: true }), "PX", TTL);
    expect(await named()).toEqual({ id: "old", epoch: 2, ready: true });
    expect((await follower.snapshot(true)).leader).toEqual({ id: "old", epoch: 2, ready: true });
    await redis.del(keys.leaderInfo);
    expect(await named()).toBeUndefined();
    // A leader of this version stopped publishing; its old key has not expired yet.
    await redis.set(keys.leader, "tok", "PX", TTL);
    await leader.publishLeader("tok", L, TTL);
    expect(await named()).toEqual(L);
    await clock.advance(TTL);
    expect(await named()).toBeUndefined();
    // An old-version leader took over: its key names another term.
    await redis.set(keys.leaderInfo, JSON.stringify({ id: "old", epoch: 4, ready: true }), "PX", TTL);
    expect(await named()).toEqual({ id: "old", epoch: 4, ready: true });
  });
});
