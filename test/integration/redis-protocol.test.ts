/**
 * The Redis protocol against a real Redis: every wrapper's happy path and decoded shape,
 * what a heartbeat costs (INFO commandstats, on a private Redis), the NOSCRIPT fallback
 * after SCRIPT FLUSH, and malformed data (a ProtocolError for a reply of the wrong shape;
 * `undefined` for an unreadable stored document). The leader info: leader-info.test.ts.
 */
import crypto from "node:crypto";
import { Redis as IORedis, type Redis } from "ioredis";
import { PrivateRedis } from "../helpers/private-servers.js";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { Keys } from "../../shared/keys.js";
import { decodeNudge, ProtocolError, RedisProtocol } from "../../shared/redis-protocol.js";
import { FEED_READ, HEARTBEAT, PUBLISH_LEADER, PUBLISH_MODE, PUBLISH_VERSIONS, READ_MEMBER } from "../../shared/redis-scripts.js";
import type { Heartbeat, Nudge } from "../../shared/types.js";
import { clearPrefix, connectTestRedis, uniqueName } from "../helpers/services.js";

const TTL = 5000;

function hb(id: string, seq = 1, ttlMs = TTL): Heartbeat {
  return {
    id,
    seq,
    ttlMs,
    session: `s-${id}`,
    capacity: 10,
    draining: false,
    mode: "orchestrated",
    useOrchestrator: true,
    version: 0,
    held: ["1", "2"],
    leaving: false,
    restarting: false,
    worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" },
    startedAt: "2026-01-01T00:00:00.000Z",
    host: "h",
    location: "",
    software: "test",
  };
}

const sha = (lua: string) => crypto.createHash("sha1").update(lua).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("RedisProtocol", () => {
  const keys = new Keys(uniqueName("protocol"));
  let redis: Redis;
  let protocol: RedisProtocol;
  let incarnations = 0;

  beforeAll(async () => {
    redis = await connectTestRedis();
    protocol = new RedisProtocol(redis, keys, { newIncarnation: () => `inc-${++incarnations}` });
  });
  afterEach(async () => {
    await clearPrefix(redis, keys.prefix);
  });
  afterAll(async () => {
    await clearPrefix(redis, keys.prefix);
    redis.disconnect();
  });

  it("heartbeat: a feed entry, the heartbeat stored in the cluster hash, no key of its own; the reply decoded", async () => {
    const first = await protocol.heartbeat(hb("a"), TTL);
    expect(first).toEqual({ existed: false, version: 0, flag: undefined, incarnation: expect.stringMatching(/^inc-\d+$/), leader: undefined, leaderMark: undefined, feedId: expect.stringMatching(/^\d+-\d+$/) });
    expect(JSON.parse((await redis.hget(keys.cluster, "hb:a"))!)).toEqual(hb("a"));
    expect(await redis.hget(keys.cluster, "hbid:a")).toBe(first.feedId);
    expect(await redis.xrange(keys.feed, "-", "+")).toEqual([[first.feedId, ["id", "a", "c", "1"]]]);
    expect((await redis.keys(`${keys.prefix}:*`)).sort()).toEqual([keys.cluster, keys.feed].sort());

    await redis.set(keys.leader, "tok", "PX", TTL);
    await protocol.publishLeader("tok", { id: "L", epoch: 7, ready: true }, TTL);
    await protocol.publishVersions(new Map([["a", 3]]));
    await protocol.publishMode({ mode: "hashed", version: 2 });
    const second = await protocol.heartbeat(hb("a", 2), TTL);
    expect(second).toEqual({ existed: true, version: 3, flag: { mode: "hashed", version: 2 }, incarnation: first.incarnation, leader: { id: "L", epoch: 7, ready: true }, leaderMark: undefined, feedId: expect.any(String) });
  });

  it("heartbeat: stored whole only when it says something new (or every tenth beat), else a bare feed entry", async () => {
    const p = new RedisProtocol(redis, keys);
    await p.heartbeat(hb("a", 1), TTL);
    const same = await p.heartbeat(hb("a", 2), TTL); // only the seq moved
    expect(JSON.parse((await redis.hget(keys.cluster, "hb:a"))!).seq).toBe(1);
    expect((await redis.xrange(keys.feed, same.feedId, same.feedId))[0]![1]).toEqual(["id", "a", "c", "0"]);
    const moved = await p.heartbeat({ ...hb("a", 3), held: ["1"] }, TTL);
    expect(JSON.parse((await redis.hget(keys.cluster, "hb:a"))!)).toEqual({ ...hb("a", 3), held: ["1"] });
    expect(await redis.hget(keys.cluster, "hbid:a")).toBe(moved.feedId);
    for (let seq = 4; seq < 13; seq++) await p.heartbeat({ ...hb("a", seq), held: ["1"] }, TTL);
    expect(JSON.parse((await redis.hget(keys.cluster, "hb:a"))!).seq).toBe(3);
    await p.heartbeat({ ...hb("a", 13), held: ["1"] }, TTL);
    expect(JSON.parse((await redis.hget(keys.cluster, "hb:a"))!).seq).toBe(13); // the tenth beat after the change
  });

  it("heartbeat: existed is false once our record is gone, or once Redis's clock saw no beat of ours for the TTL", async () => {
    const p = new RedisProtocol(redis, keys);
    await p.heartbeat(hb("a", 1), TTL);
    expect((await p.heartbeat(hb("a", 2), TTL)).existed).toBe(true);
    // Deleted (or pruned): the next beat finds no record, says so and stores the heartbeat whole again.
    await redis.hdel(keys.cluster, "hbid:a", "hb:a");
    const back = await p.heartbeat(hb("a", 3), TTL);
    expect(back.existed).toBe(false);
    expect(JSON.parse((await redis.hget(keys.cluster, "hb:a"))!).seq).toBe(3);
    expect((await p.heartbeat(hb("a", 4), TTL)).existed).toBe(true);
    // A silence of the TTL by Redis's clock (a key with this TTL would have expired).
    await sleep(30);
    expect((await p.heartbeat(hb("a", 5), 20)).existed).toBe(false);
    expect((await p.heartbeat(hb("a", 6), TTL)).existed).toBe(true);
  });

  it("heartbeat: the leader's beats reach every member's reply as the leader mark", async () => {
    await redis.set(keys.leader, "tok", "PX", TTL);
    await protocol.publishLeader("tok", { id: "L", epoch: 1, ready: true }, TTL);
    const l = await protocol.heartbeat(hb("L"), TTL);
    expect(l.leaderMark).toEqual({ id: "L", mark: l.feedId });
    const a = await protocol.heartbeat(hb("a"), TTL);
    expect(a.leaderMark).toEqual({ id: "L", mark: l.feedId });
    const l2 = await protocol.heartbeat(hb("L", 2), TTL);
    expect((await protocol.heartbeat(hb("a", 2), TTL)).leaderMark).toEqual({ id: "L", mark: l2.feedId });
  });

  it("heartbeat: at most 4 Redis commands per agent per interval with a leader named, whatever the number of members", async () => {
    // A private Redis: INFO commandstats counts the whole server, and other test files share the default one.
    const own = await PrivateRedis.start();
    const r = new IORedis(own.url, { maxRetriesPerRequest: 1 });
    try {
      const calls = async () => {
        const stats = await r.info("commandstats");
        return new Map([...stats.matchAll(/cmdstat_(\w+):calls=(\d+)/g)].filter((m) => m[1] !== "info").map((m) => [m[1]!, Number(m[2])]));
      };
      const cost = async (beats: () => Promise<unknown>) => {
        const before = await calls();
        await beats();
        const after = await calls();
        const by: Record<string, number> = {};
        for (const [cmd, n] of after) if (n !== (before.get(cmd) ?? 0)) by[cmd] = n - (before.get(cmd) ?? 0);
        return by;
      };
      const total = (by: Record<string, number>) => Object.values(by).reduce((a, b) => a + b, 0);
      const members = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `m${i}`, p: new RedisProtocol(r, keys) }));
      const leader = new RedisProtocol(r, keys);
      await r.set(keys.leader, "tok", "PX", 60_000);
      await leader.publishLeader("tok", { id: "m0", epoch: 1, ready: true }, 60_000);
      const few = members(5);
      const many = members(50);
      let seq = 0;
      const round = (ms: typeof few) => Promise.all(ms.map(({ id, p }) => p.heartbeat(hb(id, ++seq), TTL)));
      await round(few); // the incarnation and every member's first beat (stored whole)
      await round(many);
      // A beat that says nothing new: EVALSHA, HMGET, XADD. No SET, no GET of the leader info.
      expect(await cost(() => few[1]!.p.heartbeat(hb("m1", ++seq), TTL))).toEqual({ evalsha: 1, hmget: 1, xadd: 1 });
      // One that does, or the leader's (its lmark): one HSET more.
      expect(await cost(() => few[1]!.p.heartbeat({ ...hb("m1", ++seq), held: [] }, TTL))).toEqual({ evalsha: 1, hmget: 1, xadd: 1, hset: 1 });
      expect(await cost(() => few[0]!.p.heartbeat(hb("m0", ++seq), TTL))).toEqual({ evalsha: 1, hmget: 1, xadd: 1, hset: 1 });
      // Ten intervals, every member beating once per interval: the same per member at 5 and 50 members, at most 4.
      const perBeat = async (ms: typeof few) => total(await cost(async () => { for (let i = 0; i < 10; i++) await round(ms); })) / (10 * ms.length);
      const [small, large] = [await perBeat(few), await perBeat(many)];
      expect(small).toBeLessThanOrEqual(4);
      expect(large).toBeLessThanOrEqual(3.2); // 3, plus the tenth beat stored whole, plus the leader's lmark
      expect(large).toBeGreaterThanOrEqual(3);
    } finally {
      r.disconnect();
      await own.stop();
    }
  });

  it("heartbeat: a version that is not an integer is a ProtocolError", async () => {
    await redis.hset(keys.cluster, "v:a", "three");
    await expect(protocol.heartbeat(hb("a"), TTL)).rejects.toBeInstanceOf(ProtocolError);
  });

  it("snapshot: a decider's copy from the feed; the heartbeats that said something new come in the same reply", async () => {
    const decider = new RedisProtocol(redis, keys);
    expect(await decider.snapshot(true)).toEqual({ incarnation: undefined, leader: undefined, flag: undefined, members: [] });
    // One protocol per agent: it remembers what its own last heartbeat said.
    const [pa, pb] = [new RedisProtocol(redis, keys), new RedisProtocol(redis, keys)];
    const { incarnation } = await pa.heartbeat(hb("a"), TTL);
    await pb.heartbeat(hb("b"), TTL);
    const snap = await decider.snapshot(true);
    expect(snap.incarnation).toBe(incarnation);
    expect(snap.flag).toBeUndefined();
    const byId = new Map(snap.members.map((m) => [m.id, m]));
    expect(byId.get("a")!.heartbeat).toEqual(hb("a"));
    expect(byId.get("a")!.present).toBe(true);
    // A beat that says nothing new moves the mark; the copy keeps the heartbeat it has.
    const a2 = await pa.heartbeat(hb("a", 2), TTL);
    const next = new Map((await decider.snapshot()).members.map((m) => [m.id, m]));
    expect(next.get("a")!.mark).toBe(a2.feedId);
    expect(next.get("a")!.heartbeat!.seq).toBe(1);
    expect(next.get("b")!.mark).toBe(byId.get("b")!.mark);
    // A heartbeat that says something new comes with the read.
    const moved = { ...hb("a", 3), held: ["1"] };
    await pa.heartbeat(moved, TTL);
    const fetches = vi.spyOn(redis, "hmget");
    try {
      expect((await decider.snapshot()).members.find((m) => m.id === "a")!.heartbeat).toEqual(moved);
      expect(fetches).not.toHaveBeenCalled(); // one round trip
    } finally {
      fetches.mockRestore();
    }
  });

  it("snapshot: a whole read covers the window given, not the whole feed", async () => {
    await new RedisProtocol(redis, keys).heartbeat(hb("old"), TTL);
    await sleep(120);
    await new RedisProtocol(redis, keys).heartbeat(hb("new"), TTL);
    expect((await new RedisProtocol(redis, keys).snapshot(true, 60)).members.map((m) => m.id)).toEqual(["new"]);
    expect((await new RedisProtocol(redis, keys).snapshot(true, 10_000)).members.map((m) => m.id).sort()).toEqual(["new", "old"]);
  });

  it("snapshot: a member first seen after the whole read, beating with nothing new, is fetched all the same", async () => {
    const pa = new RedisProtocol(redis, keys);
    await pa.heartbeat(hb("a", 1), TTL);
    await sleep(80);
    await new RedisProtocol(redis, keys).heartbeat(hb("b"), TTL);
    const decider = new RedisProtocol(redis, keys);
    expect((await decider.snapshot(true, 40)).members.map((m) => m.id)).toEqual(["b"]);
    await pa.heartbeat(hb("a", 2), TTL); // c = "0": its heartbeat is stored from before
    const fetches = vi.spyOn(redis, "hmget");
    try {
      const a = (await decider.snapshot()).members.find((m) => m.id === "a")!;
      expect(a.heartbeat).toEqual(hb("a", 1));
      expect(a.present).toBe(true);
      expect(fetches).toHaveBeenCalledTimes(1); // the second round trip, for it alone
    } finally {
      fetches.mockRestore();
    }
  });

  it("snapshot: a member silent for its heartbeat's TTL by Redis's clock reads as absent", async () => {
    const decider = new RedisProtocol(redis, keys);
    await new RedisProtocol(redis, keys).heartbeat(hb("a", 1, 40), 40);
    const pb = new RedisProtocol(redis, keys);
    await pb.heartbeat(hb("b"), TTL);
    expect((await decider.snapshot(true)).members.every((m) => m.present)).toBe(true);
    await sleep(60);
    await pb.heartbeat(hb("b", 2), TTL);
    const byId = new Map((await decider.snapshot()).members.map((m) => [m.id, m]));
    expect(byId.get("a")!.present).toBe(false);
    expect(byId.get("a")!.heartbeat).toBeUndefined();
    expect(byId.get("b")!.present).toBe(true);
  });

  it("snapshot: Redis losing its data empties the copy (a new incarnation, the whole feed read again)", async () => {
    const decider = new RedisProtocol(redis, keys);
    await protocol.heartbeat(hb("a"), TTL);
    await protocol.heartbeat(hb("b"), TTL);
    const before = await decider.snapshot(true);
    await clearPrefix(redis, keys.prefix);
    await protocol.heartbeat(hb("b", 2), TTL);
    const after = await decider.snapshot();
    expect(after.incarnation).not.toBe(before.incarnation);
    expect(after.members.map((m) => m.id)).toEqual(["b"]);
    expect(after.members[0]!.heartbeat).toEqual(hb("b", 2)); // a new Redis: stored whole again
  });

  it("snapshot: unreadable stored documents read as absent", async () => {
    await protocol.heartbeat(hb("a"), TTL);
    await redis.hset(keys.cluster, "hb:a", "{not json");
    await redis.hset(keys.cluster, "mode", JSON.stringify({ mode: "sideways", version: 1 }));
    const snap = await new RedisProtocol(redis, keys).snapshot(true);
    expect(snap.members[0]!.heartbeat).toBeUndefined();
    expect(snap.flag).toBeUndefined();
  });

  it("readMember: a member's stored heartbeat and its latest feed entry within the window", async () => {
    expect(await protocol.readMember("a", TTL)).toEqual({ heartbeat: undefined, mark: undefined, silentMs: undefined });
    const first = await protocol.heartbeat(hb("a"), TTL);
    await protocol.heartbeat(hb("b"), TTL);
    const r = await protocol.readMember("a", TTL);
    expect(r.heartbeat).toEqual(hb("a"));
    expect(r.mark).toBe(first.feedId);
    expect(r.silentMs).toBeGreaterThanOrEqual(0);
    expect(r.silentMs).toBeLessThan(TTL);
    await sleep(30);
    expect((await protocol.readMember("a", 20)).mark).toBeUndefined();
  });

  it("publishVersions: raises, never lowers, and says how many rose", async () => {
    expect(await protocol.publishVersions(new Map())).toBe(0);
    expect(await protocol.publishVersions(new Map([["a", 5], ["b", 2]]))).toBe(2);
    expect(await protocol.publishVersions(new Map([["a", 4], ["b", 3]]))).toBe(1);
    expect(await redis.hgetall(keys.versions)).toEqual({ a: "5", b: "3" });
    expect(await redis.hmget(keys.cluster, "v:a", "v:b")).toEqual(["5", "3"]);
  });

  it("publishMode: only a newer version replaces the mirror", async () => {
    expect(await protocol.publishMode({ mode: "hashed", version: 2 })).toBe(true);
    expect(await protocol.publishMode({ mode: "orchestrated", version: 2 })).toBe(false);
    expect(await protocol.publishMode({ mode: "orchestrated", version: 1 })).toBe(false);
    expect(JSON.parse((await redis.get(keys.mode))!)).toEqual({ mode: "hashed", version: 2 });
    expect(JSON.parse((await redis.hget(keys.cluster, "mode"))!)).toEqual({ mode: "hashed", version: 2 });
    expect(await protocol.publishMode({ mode: "orchestrated", version: 3 })).toBe(true);
  });

  it("publishNudge: subscribers receive what decodeNudge reads back", async () => {
    const sub = await connectTestRedis();
    try {
      const got: (Nudge | undefined)[] = [];
      sub.on("message", (_c: string, m: string) => got.push(decodeNudge(m)));
      await sub.subscribe(keys.channel);
      const n: Nudge = { t: "assign", epoch: 4, versions: { a: 2 } };
      expect(await protocol.publishNudge(n)).toBe(1);
      for (let i = 0; i < 50 && got.length === 0; i++) await sleep(10);
      expect(got).toEqual([n]);
    } finally {
      sub.disconnect();
    }
  });

  it("decodeNudge: unknown or malformed messages are ignored", () => {
    expect(decodeNudge(JSON.stringify({ t: "member", id: "a" }))).toBeUndefined();
    expect(decodeNudge(JSON.stringify({ t: "assign", epoch: 1 }))).toBeUndefined();
    expect(decodeNudge(JSON.stringify({ t: "mode", mode: "sideways" }))).toBeUndefined();
    expect(decodeNudge("not json")).toBeUndefined();
    expect(decodeNudge(JSON.stringify({ t: "rebalance" }))).toEqual({ t: "rebalance" });
    expect(decodeNudge(JSON.stringify({ t: "leader", id: null, epoch: 3 }))).toEqual({ t: "leader", id: null, epoch: 3 });
  });

  it("pruneMembers: forgets their versions and heartbeats and drops them from a decider's copy", async () => {
    await protocol.heartbeat(hb("a"), TTL);
    await protocol.heartbeat(hb("b"), TTL);
    await protocol.publishVersions(new Map([["a", 2], ["b", 2]]));
    await protocol.snapshot(true);
    expect(await protocol.pruneMembers([])).toBe(0);
    await protocol.pruneMembers(["a", "zz"]);
    expect(await redis.hmget(keys.cluster, "v:a", "hb:a", "hbid:a")).toEqual([null, null, null]);
    expect(await redis.hget(keys.cluster, "v:b")).toBe("2");
    expect((await protocol.snapshot()).members.map((m) => m.id)).toEqual(["b"]);
  });

  it("falls back to EVAL when Redis lost its script cache (SCRIPT FLUSH)", async () => {
    // A private Redis: the script cache is global to a server, and other test files share the default one.
    const own = await PrivateRedis.start();
    const r = new IORedis(own.url, { maxRetriesPerRequest: 1 });
    try {
      const p = new RedisProtocol(r, keys);
      const all = [HEARTBEAT, FEED_READ, READ_MEMBER, PUBLISH_VERSIONS, PUBLISH_MODE, PUBLISH_LEADER].map((s) => sha(s.lua));
      const runAll = async () => {
        await p.heartbeat(hb("a"), TTL);
        await p.snapshot();
        await p.readMember("a", TTL);
        await p.publishVersions(new Map([["a", 1]]));
        await p.publishMode({ mode: "orchestrated", version: 1 });
        await p.publishLeader("tok", { id: "L", epoch: 1, ready: true }, TTL);
      };
      await runAll();
      expect(await r.script("EXISTS", ...all)).toEqual([1, 1, 1, 1, 1, 1]);
      // Global to the server, but every client of ours (and redlock) falls back the same way.
      await r.script("FLUSH");
      expect(await r.script("EXISTS", ...all)).toEqual([0, 0, 0, 0, 0, 0]);
      await runAll(); // EVALSHA → NOSCRIPT → EVAL, invisible to the caller
      expect(await r.script("EXISTS", ...all)).toEqual([1, 1, 1, 1, 1, 1]);
      expect((await p.snapshot(true)).members.map((m) => m.id)).toEqual(["a"]);
    } finally {
      r.disconnect();
      await own.stop();
    }
  });

  it("a reply of the wrong shape is a ProtocolError naming the command", async () => {
    const replies: Record<string, unknown> = {
      fv7Heartbeat3: [2, "0", "", "inc", "", "", "", "1-0", ""],
      fv7FeedRead2: ["", "", "", "", "", "", ["a"], [], [], [], ""],
      fv7ReadMember: ["", "", "soon"],
      fv7PublishLeader2: "OK",
      fv7PublishVersions: "many",
      fv7PublishMode: null,
    };
    const fake = { defineCommand(name: string) { (this as Record<string, unknown>)[name] = async () => replies[name]; } };
    const broken = new RedisProtocol(fake as unknown as Redis, keys);
    const calls = [
      ["heartbeat", () => broken.heartbeat(hb("a"), TTL)],
      ["snapshot", () => broken.snapshot()],
      ["readMember", () => broken.readMember("a", TTL)],
      ["publishLeader", () => broken.publishLeader("t", { id: "L", epoch: 1, ready: true }, TTL)],
      ["publishVersions", () => broken.publishVersions(new Map([["a", 1]]))],
      ["publishMode", () => broken.publishMode({ mode: "hashed", version: 1 })],
    ] as const;
    for (const [command, call] of calls) {
      const err = await call().then(() => undefined, (e: unknown) => e);
      expect(err, command).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).command).toBe(command);
    }
  });
});
