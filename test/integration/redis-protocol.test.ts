/**
 * The Redis protocol against a real Redis: every wrapper's happy path and decoded shape,
 * the NOSCRIPT fallback after SCRIPT FLUSH, and malformed data (a ProtocolError for a
 * reply of the wrong shape; `undefined` for an unreadable stored document).
 */
import crypto from "node:crypto";
import { Redis as IORedis, type Redis } from "ioredis";
import { PrivateRedis } from "../helpers/private-servers.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Keys } from "../../shared/keys.js";
import { decodeNudge, ProtocolError, RedisProtocol } from "../../shared/redis-protocol.js";
import { FEED_READ, HEARTBEAT, PUBLISH_LEADER, PUBLISH_MODE, PUBLISH_VERSIONS } from "../../shared/redis-scripts.js";
import type { Heartbeat, Nudge } from "../../shared/types.js";
import { clearPrefix, connectTestRedis, uniqueName } from "../helpers/services.js";

const TTL = 5000;

function hb(id: string, seq = 1): Heartbeat {
  return {
    id,
    seq,
    ttlMs: TTL,
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

describe("RedisProtocol", () => {
  const keys = new Keys(uniqueName("protocol"));
  let redis: Redis;
  let protocol: RedisProtocol;
  let incarnations = 0;

  beforeAll(async () => {
    redis = await connectTestRedis();
    protocol = new RedisProtocol(redis, keys, () => `inc-${++incarnations}`);
  });
  afterEach(async () => {
    await clearPrefix(redis, keys.prefix);
  });
  afterAll(async () => {
    await clearPrefix(redis, keys.prefix);
    redis.disconnect();
  });

  it("heartbeat: writes the key and a feed entry, and decodes the reply", async () => {
    const first = await protocol.heartbeat(hb("a"), TTL);
    expect(first).toEqual({ existed: false, version: 0, flag: undefined, incarnation: expect.stringMatching(/^inc-\d+$/), leader: undefined, leaderMark: undefined, feedId: expect.stringMatching(/^\d+-\d+$/) });
    expect(JSON.parse((await redis.get(keys.heartbeat("a")))!)).toEqual(hb("a"));
    const pttl = await redis.pttl(keys.heartbeat("a"));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(TTL);
    expect(await redis.xrange(keys.feed, "-", "+")).toEqual([[first.feedId, ["id", "a", "c", "1"]]]);

    await redis.set(keys.leader, "tok");
    await protocol.publishLeader("tok", { id: "L", epoch: 7, ready: true }, TTL);
    await protocol.publishVersions(new Map([["a", 3]]));
    await protocol.publishMode({ mode: "hashed", version: 2 });
    const second = await protocol.heartbeat(hb("a", 2), TTL);
    expect(second).toEqual({ existed: true, version: 3, flag: { mode: "hashed", version: 2 }, incarnation: first.incarnation, leader: { id: "L", epoch: 7, ready: true }, leaderMark: undefined, feedId: expect.any(String) });
  });

  it("heartbeat: the leader's beats reach every member's reply as the leader mark", async () => {
    await redis.set(keys.leader, "tok");
    await protocol.publishLeader("tok", { id: "L", epoch: 1, ready: true }, TTL);
    const l = await protocol.heartbeat(hb("L"), TTL);
    expect(l.leaderMark).toEqual({ id: "L", mark: l.feedId });
    const a = await protocol.heartbeat(hb("a"), TTL);
    expect(a.leaderMark).toEqual({ id: "L", mark: l.feedId });
    const l2 = await protocol.heartbeat(hb("L", 2), TTL);
    expect((await protocol.heartbeat(hb("a", 2), TTL)).leaderMark).toEqual({ id: "L", mark: l2.feedId });
  });

  it("heartbeat: a constant number of Redis commands whatever the number of members", async () => {
    // A private Redis: INFO commandstats counts the whole server, and other test files share the default one.
    const own = await PrivateRedis.start();
    const r = new IORedis(own.url, { maxRetriesPerRequest: 1 });
    try {
      const p = new RedisProtocol(r, keys);
      for (const id of ["a", "b", "c", "d"]) await p.heartbeat(hb(id), TTL);
      const calls = async () => {
        const stats = await r.info("commandstats");
        return [...stats.matchAll(/cmdstat_(\w+):calls=(\d+)/g)].filter((m) => m[1] !== "info").reduce((n, m) => n + Number(m[2]), 0);
      };
      const cost = async (members: number) => {
        const before = await calls();
        for (let i = 0; i < members; i++) await p.heartbeat(hb(`m${i}`, 2), TTL);
        return (await calls()) - before;
      };
      await cost(20); // the incarnation and every member's first beat
      const few = await cost(5);
      const many = await cost(50);
      // EVALSHA + SET, XADD, HMGET, GET per beat, however many members there are.
      expect(few / 5).toBe(5);
      expect(many / 50).toBe(5);
    } finally {
      r.disconnect();
      await own.stop();
    }
  });

  it("heartbeat: a version that is not an integer is a ProtocolError", async () => {
    await redis.hset(keys.cluster, "v:a", "three");
    await expect(protocol.heartbeat(hb("a"), TTL)).rejects.toBeInstanceOf(ProtocolError);
  });

  it("snapshot: a decider's copy from the feed; a fetch for members whose heartbeat said something new only", async () => {
    const decider = new RedisProtocol(redis, keys);
    expect(await decider.snapshot(true)).toEqual({ incarnation: undefined, leader: undefined, flag: undefined, members: [] });
    // One protocol per agent: it remembers what its own last heartbeat said.
    const [pa, pb] = [new RedisProtocol(redis, keys), new RedisProtocol(redis, keys)];
    const { incarnation } = await pa.heartbeat(hb("a"), TTL);
    await pb.heartbeat(hb("b"), TTL);
    await redis.set(keys.leaderInfo, JSON.stringify({ id: "a", epoch: 1, ready: false }));
    const snap = await decider.snapshot(true);
    expect(snap.incarnation).toBe(incarnation);
    expect(snap.leader).toEqual({ id: "a", epoch: 1, ready: false });
    expect(snap.flag).toBeUndefined();
    const byId = new Map(snap.members.map((m) => [m.id, m]));
    expect(byId.get("a")!.heartbeat).toEqual(hb("a"));
    expect(byId.get("a")!.present).toBe(true);
    // A beat that says nothing new moves the mark; the copy keeps the heartbeat it fetched.
    const a2 = await pa.heartbeat(hb("a", 2), TTL);
    const next = new Map((await decider.snapshot()).members.map((m) => [m.id, m]));
    expect(next.get("a")!.mark).toBe(a2.feedId);
    expect(next.get("a")!.heartbeat!.seq).toBe(1);
    expect(next.get("b")!.mark).toBe(byId.get("b")!.mark);
    // A heartbeat that says something new is fetched again.
    const moved = { ...hb("a", 3), held: ["1"] };
    await pa.heartbeat(moved, TTL);
    expect((await decider.snapshot()).members.find((m) => m.id === "a")!.heartbeat).toEqual(moved);
  });

  it("snapshot: a whole read covers the window given, not the whole feed", async () => {
    await new RedisProtocol(redis, keys).heartbeat(hb("old"), TTL);
    await new Promise((r) => setTimeout(r, 120));
    await new RedisProtocol(redis, keys).heartbeat(hb("new"), TTL);
    expect((await new RedisProtocol(redis, keys).snapshot(true, 60)).members.map((m) => m.id)).toEqual(["new"]);
    expect((await new RedisProtocol(redis, keys).snapshot(true, 10_000)).members.map((m) => m.id).sort()).toEqual(["new", "old"]);
  });

  it("snapshot: a member whose key vanished is fetched again and reads as absent", async () => {
    const decider = new RedisProtocol(redis, keys);
    await protocol.heartbeat(hb("a"), TTL);
    await decider.snapshot(true);
    await redis.del(keys.heartbeat("a"));
    const r = await protocol.heartbeat(hb("a", 2), TTL);
    expect(r.existed).toBe(false);
    await redis.del(keys.heartbeat("a"));
    const a = (await decider.snapshot()).members.find((m) => m.id === "a")!;
    expect(a.heartbeat).toBeUndefined();
    expect(a.present).toBe(false);
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
  });

  it("snapshot: unreadable stored documents read as absent", async () => {
    await protocol.heartbeat(hb("a"), TTL);
    await redis.set(keys.heartbeat("a"), "{not json", "PX", TTL);
    await redis.set(keys.leaderInfo, JSON.stringify({ who: "?" }));
    await redis.hset(keys.cluster, "mode", JSON.stringify({ mode: "sideways", version: 1 }));
    const snap = await new RedisProtocol(redis, keys).snapshot(true);
    expect(snap.members[0]!.heartbeat).toBeUndefined();
    expect(snap.leader).toBeUndefined();
    expect(snap.flag).toBeUndefined();
  });

  it("publishLeader: writes only while the token holds the lease", async () => {
    const info = { id: "L", epoch: 1, ready: true };
    expect(await protocol.publishLeader("tok", info, TTL)).toBe(false);
    await redis.set(keys.leader, "tok");
    expect(await protocol.publishLeader("other", info, TTL)).toBe(false);
    expect(await redis.exists(keys.leaderInfo)).toBe(0);
    expect(await protocol.publishLeader("tok", info, TTL)).toBe(true);
    expect(JSON.parse((await redis.get(keys.leaderInfo))!)).toEqual(info);
    expect(await redis.pttl(keys.leaderInfo)).toBeGreaterThan(0);
  });

  it("clearLeader: removes the leader info only when it names the caller", async () => {
    await redis.set(keys.leaderInfo, JSON.stringify({ id: "L", epoch: 1, ready: true }));
    expect(await protocol.clearLeader("other")).toBe(false);
    expect(await redis.exists(keys.leaderInfo)).toBe(1);
    expect(await protocol.clearLeader("L")).toBe(true);
    expect(await redis.exists(keys.leaderInfo)).toBe(0);
    expect(await protocol.clearLeader("L")).toBe(false);
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
      for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
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

  it("pruneMembers: forgets their versions and drops them from a decider's copy", async () => {
    await protocol.heartbeat(hb("a"), TTL);
    await protocol.heartbeat(hb("b"), TTL);
    await protocol.publishVersions(new Map([["a", 2], ["b", 2]]));
    await protocol.snapshot(true);
    expect(await protocol.pruneMembers([])).toBe(0);
    await protocol.pruneMembers(["a", "zz"]);
    expect(await redis.hget(keys.cluster, "v:a")).toBeNull();
    expect(await redis.hget(keys.cluster, "v:b")).toBe("2");
    expect((await protocol.snapshot()).members.map((m) => m.id)).toEqual(["b"]);
  });

  it("readHeartbeat: the stored heartbeat and its PTTL", async () => {
    expect(await protocol.readHeartbeat("a")).toEqual({ heartbeat: undefined, pttlMs: -2 });
    await protocol.heartbeat(hb("a"), TTL);
    const r = await protocol.readHeartbeat("a");
    expect(r.heartbeat).toEqual(hb("a"));
    expect(r.pttlMs).toBeGreaterThan(0);
    expect(r.pttlMs).toBeLessThanOrEqual(TTL);
  });

  it("falls back to EVAL when Redis lost its script cache (SCRIPT FLUSH)", async () => {
    const all = [HEARTBEAT, FEED_READ, PUBLISH_VERSIONS, PUBLISH_MODE, PUBLISH_LEADER].map((s) => sha(s.lua));
    const runAll = async () => {
      await protocol.heartbeat(hb("a"), TTL);
      await protocol.snapshot();
      await protocol.publishVersions(new Map([["a", 1]]));
      await protocol.publishMode({ mode: "orchestrated", version: 1 });
      await protocol.publishLeader("tok", { id: "L", epoch: 1, ready: true }, TTL);
    };
    await runAll();
    expect(await redis.script("EXISTS", ...all)).toEqual([1, 1, 1, 1, 1]);
    // Global to the server, but every client of ours (and redlock) falls back the same way.
    await redis.script("FLUSH");
    expect(await redis.script("EXISTS", ...all)).toEqual([0, 0, 0, 0, 0]);
    await runAll(); // EVALSHA → NOSCRIPT → EVAL, invisible to the caller
    expect(await redis.script("EXISTS", ...all)).toEqual([1, 1, 1, 1, 1]);
    expect((await protocol.snapshot(true)).members.map((m) => m.id)).toEqual(["a"]);
  });

  it("a reply of the wrong shape is a ProtocolError naming the command", async () => {
    const replies: Record<string, unknown> = {
      fv7Heartbeat2: [2, "0", "", "inc", "", "", "1-0"],
      fv7FeedRead: ["", "", "", ["a"], [], [], ""],
      fv7PublishLeader: "OK",
      fv7PublishVersions: "many",
      fv7PublishMode: null,
    };
    const fake = { defineCommand(name: string) { (this as Record<string, unknown>)[name] = async () => replies[name]; } };
    const broken = new RedisProtocol(fake as unknown as Redis, keys);
    const calls = [
      ["heartbeat", () => broken.heartbeat(hb("a"), TTL)],
      ["snapshot", () => broken.snapshot()],
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
