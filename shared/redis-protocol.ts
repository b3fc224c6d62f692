/**
 * The Redis protocol: every command this project sends to Redis for coordination, with
 * typed arguments and decoded replies. Key names come from Keys (shared/keys.ts); the Lua
 * scripts are in shared/redis-scripts.ts, registered with ioredis `defineCommand`, which
 * sends EVALSHA and falls back to EVAL when Redis answers NOSCRIPT (after a restart or a
 * SCRIPT FLUSH).
 *
 * Heartbeats live in the feed (an entry per beat) and, when they say something new, in the
 * cluster hash (shared/keys.ts); there are no per-member keys. The leader info is passed
 * through a LeaderWatch (shared/leader-watch.ts): `leader` in every reply is the LIVE
 * leader only. While none is live in the cluster hash, the old leader info key (what a
 * leader of the version before the cluster hash writes) is read too, and counts unless it
 * only repeats the stale one.
 *
 * Two kinds of bad data, handled differently:
 * - a reply whose SHAPE is not what the script returns (wrong arity, a type, a version
 *   that is no integer) is a broken invariant: it throws ProtocolError;
 * - a stored document other processes wrote (a heartbeat, the leader info, the flag
 *   mirror, a nudge) that does not parse decodes to `undefined`, as if absent: one
 *   agent's bad write, or an older agent's, must not stop everyone else's heartbeats.
 *
 * Beside this file: ./redis-replies.ts checks the replies' shapes (ProtocolError);
 * ./heartbeat-encoding.ts encodes a heartbeat and says whether it says anything new
 * (both re-exported here).
 */
import crypto from "node:crypto";
import type { Redis } from "ioredis";
import { systemClock, type Clock } from "./clock.js";
import type { Keys } from "./keys.js";
import { LeaderWatch } from "./leader-watch.js";
import type { ClusterFlag } from "./membership.js";
import { FeedMirror, feedMs } from "./feed-mirror.js";
import { CLEAR_LEADER, FEED_MAXLEN, FEED_READ, HEARTBEAT, PUBLISH_LEADER, PUBLISH_MODE, PUBLISH_VERSIONS, READ_MEMBER, type ScriptDef } from "./redis-scripts.js";
import { decodeFlag, decodeHeartbeat, decodeLeaderInfo, decodeLeaderMark } from "./redis-documents.js";
import type { Heartbeat, LeaderInfo, Nudge } from "./types.js";
import { encodeHeartbeat, saysNothingNew } from "./heartbeat-encoding.js";
import { flag01, int, list, ProtocolError, str, tuple } from "./redis-replies.js";

export { decodeFlag, decodeHeartbeat, decodeLeaderInfo, decodeLeaderMark, decodeNudge } from "./redis-documents.js";
export { encodeHeartbeat, saysNothingNew } from "./heartbeat-encoding.js";
export { ProtocolError } from "./redis-replies.js";

export interface HeartbeatReply {
  /**
   * What a heartbeat key with the heartbeat's TTL would have said: false when our record
   * in the cluster hash was gone (deleted, pruned, Redis lost its data) or when Redis's
   * clock saw no confirmed heartbeat of ours for that TTL.
   */
  readonly existed: boolean;
  /** The assignment version the leader committed for us (0 if none). */
  readonly version: number;
  readonly flag: ClusterFlag | undefined;
  /** This Redis lifetime's id; it changes when Redis lost its data. */
  readonly incarnation: string;
  /** The live leader (shared/leader-watch.ts), undefined when none is. */
  readonly leader: LeaderInfo | undefined;
  /** The leader's last heartbeat as the feed has it: its progress, for followers. */
  readonly leaderMark: { readonly id: string; readonly mark: string } | undefined;
  /** This heartbeat's feed id. */
  readonly feedId: string;
}

export interface RawMember {
  readonly id: string;
  /** The member's last heartbeat as last fetched; undefined when it is not present (or unreadable). */
  readonly heartbeat: Heartbeat | undefined;
  /**
   * What changes with each of the member's heartbeats on this channel (the feed id of its
   * latest). Without it, the heartbeat's session and seq are the mark.
   */
  readonly mark?: string;
  /** Whether it beat within its heartbeat's TTL by Redis's clock; without it, whether `heartbeat` is defined. */
  readonly present?: boolean;
}

/** Everything the membership tracker reads, as one atomic read. */
export interface RawSnapshot {
  readonly incarnation: string | undefined;
  readonly leader: LeaderInfo | undefined;
  readonly flag: ClusterFlag | undefined;
  readonly members: readonly RawMember[];
}

/** One member's latest heartbeat as Redis has it (the duplicate-instance check). */
export interface StoredHeartbeat {
  /** Its heartbeat as last stored whole (undefined if none, or unreadable). */
  readonly heartbeat: Heartbeat | undefined;
  /** The feed id of its latest entry in the window read; undefined when it has none there. */
  readonly mark: string | undefined;
  /** How long ago that entry was written, by Redis's clock (undefined without one). */
  readonly silentMs: number | undefined;
}

export interface ProtocolOptions {
  /** Where a fresh incarnation id comes from (used only when Redis has none). */
  readonly newIncarnation?: () => string;
  /** The local clock the leader info's liveness is judged on. */
  readonly clock?: Clock;
}

/** ioredis command names the scripts are registered under (prefixed: they share a namespace with Redis commands). */
const COMMANDS = {
  heartbeat: ["fv7Heartbeat3", HEARTBEAT],
  feedRead: ["fv7FeedRead2", FEED_READ],
  readMember: ["fv7ReadMember", READ_MEMBER],
  publishVersions: ["fv7PublishVersions", PUBLISH_VERSIONS],
  publishMode: ["fv7PublishMode", PUBLISH_MODE],
  publishLeader: ["fv7PublishLeader2", PUBLISH_LEADER],
  clearLeader: ["fv7ClearLeader2", CLEAR_LEADER],
} as const satisfies Record<string, readonly [string, ScriptDef]>;

type ScriptName = keyof typeof COMMANDS;
type ScriptCommand = (...args: string[]) => Promise<unknown>;

/** A whole read's window when the caller gives none: two default HEARTBEAT_TIMEOUTs. */
const DEFAULT_WINDOW_MS = 10_000;

/**
 * A member's heartbeat is stored whole at least every this many beats, so deciders
 * refresh its counters (everything else it reports is stored whenever it changes). Only
 * freshness depends on it: the stored heartbeat has no TTL, so a decider's whole read
 * finds every member's whatever the window.
 */
const FULL_PAYLOAD_EVERY = 10;

export class RedisProtocol {
  /** What the last confirmed heartbeat said, and how many beats ago it was stored whole. */
  private sent: { hb: Heartbeat; beats: number } | undefined;
  /** The feed id of the last confirmed heartbeat, per instance id (one, in an agent). */
  private lastFeedId = new Map<string, string>();
  /** A decider's copy of the members' heartbeats, kept current from the feed. */
  private readonly mirror = new FeedMirror();
  private readonly watch = new LeaderWatch();
  private readonly newIncarnation: () => string;
  private readonly clock: Clock;
  private published = 0;
  /** The last leader info written, under which token, and when it was sent (local time). */
  private lastPublished: { token: string; json: string; at: number } | undefined;

  constructor(
    private readonly redis: Redis,
    readonly keys: Keys,
    o: ProtocolOptions = {},
  ) {
    this.newIncarnation = o.newIncarnation ?? (() => crypto.randomUUID());
    this.clock = o.clock ?? systemClock;
    for (const [command, def] of Object.values(COMMANDS)) {
      if (!(command in redis)) redis.defineCommand(command, { numberOfKeys: def.numberOfKeys, lua: def.lua });
    }
  }

  /**
   * Writes our heartbeat (a feed entry; the heartbeat itself when it says something new)
   * and reads back what the agent acts on: one round trip, a constant number of commands.
   * Marks the entry new when the heartbeat says something the previous confirmed one did
   * not (or every FULL_PAYLOAD_EVERY beats); `ttlMs` is what "existed" is measured against.
   */
  async heartbeat(hb: Heartbeat, ttlMs: number): Promise<HeartbeatReply> {
    const k = this.keys;
    const prev = this.sent;
    const changed = !prev || prev.beats + 1 >= FULL_PAYLOAD_EVERY || !saysNothingNew(prev.hb, hb);
    this.sent = undefined; // until confirmed: after a failed write the next one is marked new
    const args = [hb.id, encodeHeartbeat(hb), String(ttlMs), this.newIncarnation(), changed ? "1" : "0", String(FEED_MAXLEN), this.lastFeedId.get(hb.id) ?? "", this.wantOldLeader()];
    const reply = await this.run("heartbeat", [k.feed, k.cluster, k.leaderInfo], args);
    const r = tuple("heartbeat", reply, 9);
    if (r[0] !== 0 && r[0] !== 1) throw new ProtocolError("heartbeat", "existed is not 0 or 1", reply);
    const incarnation = str("heartbeat", r[3], "incarnation");
    if (incarnation === "") throw new ProtocolError("heartbeat", "empty incarnation", reply);
    const feedId = str("heartbeat", r[7], "feed id");
    if (feedId === "") throw new ProtocolError("heartbeat", "empty feed id", reply);
    const version = int("heartbeat", r[1], "version");
    const leader = this.leaderFrom(str("heartbeat", r[4], "leader info"), str("heartbeat", r[5], "leader pub"), str("heartbeat", r[8], "old leader info"), feedMs(feedId));
    // A bare entry after which Redis says our record was gone or we were silent: store the next beat whole.
    this.sent = r[0] === 0 && !changed ? undefined : { hb, beats: changed || !prev ? 0 : prev.beats + 1 };
    this.lastFeedId.set(hb.id, feedId);
    return {
      existed: r[0] === 1,
      version,
      flag: decodeFlag(str("heartbeat", r[2], "mode")),
      incarnation,
      leader,
      leaderMark: decodeLeaderMark(str("heartbeat", r[6], "leader mark")),
      feedId,
    };
  }

  /**
   * The members and their heartbeats, the leader info, the flag mirror and the
   * incarnation, for a decider: the feed after the last read (when `full`, on a first read
   * or after Redis lost its data: the last `windowMs` of it), with the heartbeats that
   * changed, in one round trip (a second only for a member whose heartbeat this copy never
   * got, e.g. one first seen after the window). The commands do not grow with the fleet,
   * the replies with what changed.
   */
  async snapshot(full = false, windowMs = DEFAULT_WINDOW_MS): Promise<RawSnapshot> {
    const k = this.keys;
    const cursor = full ? "" : this.mirror.cursor;
    const reply = await this.run("feedRead", [k.feed, k.cluster, k.leaderInfo], [cursor, String(Math.max(1, Math.round(windowMs))), this.wantOldLeader()]);
    const r = tuple("snapshot", reply, 11);
    const incarnation = str("snapshot", r[0], "incarnation");
    const ids = list("snapshot", r[6], "ids").map((x) => str("snapshot", x, "id"));
    const feedIds = list("snapshot", r[7], "feed ids").map((x) => str("snapshot", x, "feed id"));
    const changed = list("snapshot", r[8], "changed").map((x) => str("snapshot", x, "changed") === "1");
    const stored = list("snapshot", r[9], "heartbeats").map((x) => str("snapshot", x, "heartbeat"));
    if (feedIds.length !== ids.length || changed.length !== ids.length || stored.length !== ids.length) throw new ProtocolError("snapshot", "ids, feed ids, flags and heartbeats differ in length", reply);
    const last = str("snapshot", r[10], "last");
    // Redis lost its data since the cursor was taken: the new feed's early entries may sort before it.
    if (cursor !== "" && this.mirror.isNewIncarnation(incarnation)) return this.snapshot(true, windowMs);
    const whole = cursor === "";
    const heartbeats = stored.map((raw, i) => (whole || changed[i] ? decodeHeartbeat(raw) : null));
    const fetch = this.mirror.apply({ incarnation, full: whole, ids, feedIds, changed, heartbeats, last });
    if (fetch.length > 0) {
      const payloads = await this.redis.hmget(k.cluster, ...fetch.map((id) => `hb:${id}`));
      this.mirror.fetched(fetch, payloads.map((p) => (p === null ? undefined : decodeHeartbeat(p))));
    }
    // Redis's time at the read: TIME on a whole read, else the newest feed id it knows.
    const time = str("snapshot", r[5], "time");
    const redisNow = whole ? Number(time) : Math.max(feedMs(cursor), last === "" ? 0 : feedMs(last));
    return {
      incarnation: incarnation === "" ? undefined : incarnation,
      leader: this.leaderFrom(str("snapshot", r[2], "leader info"), str("snapshot", r[3], "leader pub"), str("snapshot", r[4], "old leader info"), redisNow),
      flag: decodeFlag(str("snapshot", r[1], "mode")),
      members: this.mirror.members(),
    };
  }

  /** The live leader as this agent last read it, at local time `now`. */
  liveLeader(now = this.clock.now()): LeaderInfo | undefined {
    return this.watch.live(now);
  }

  /**
   * Writes who leads, only while `token` still holds the lease. True when written. The
   * same info under the same token is written at most every fifth of `ttlMs` (the leader
   * calls at every tick and every fifth of the TTL; followers need a change well within
   * the lease's remaining TTL, shared/leader-watch.ts): a call sooner answers as the
   * write it repeats did.
   */
  async publishLeader(token: string, info: LeaderInfo, ttlMs: number): Promise<boolean> {
    const json = JSON.stringify(info);
    const at = this.clock.now();
    const last = this.lastPublished;
    if (last && last.token === token && last.json === json && at - last.at < ttlMs / 5) return true;
    const reply = await this.run("publishLeader", [this.keys.leader, this.keys.cluster, this.keys.leaderInfo], [token, json, String(ttlMs), String(++this.published)]);
    const written = flag01("publishLeader", reply);
    this.lastPublished = written ? { token, json, at } : undefined;
    return written;
  }

  /** Removes the leader info wherever it names `id` (it stopped leading). True when removed. */
  async clearLeader(id: string): Promise<boolean> {
    this.lastPublished = undefined;
    return flag01("clearLeader", await this.run("clearLeader", [this.keys.cluster, this.keys.leaderInfo], [id]));
  }

  /** Raises members' committed versions, never lowering one. Returns how many rose. */
  async publishVersions(versions: ReadonlyMap<string, number>): Promise<number> {
    if (versions.size === 0) return 0;
    const args: string[] = [];
    for (const [id, v] of versions) args.push(id, String(v));
    return int("publishVersions", await this.run("publishVersions", [this.keys.cluster, this.keys.versions], args), "raised");
  }

  /** Mirrors the cluster flag unless a same or newer version is there. True when written. */
  async publishMode(f: ClusterFlag): Promise<boolean> {
    const reply = await this.run("publishMode", [this.keys.cluster, this.keys.mode], [JSON.stringify({ mode: f.mode, version: f.version })]);
    return flag01("publishMode", reply);
  }

  /** Publishes a nudge on the cluster's channel. Returns how many subscribers got it. */
  async publishNudge(n: Nudge): Promise<number> {
    return this.redis.publish(this.keys.channel, JSON.stringify(n));
  }

  /** Forgets members for good: their versions, their heartbeats, their place in the members set and in this decider's copy. Returns how many were in the set. */
  async pruneMembers(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    this.mirror.forget(ids);
    const fields = ids.flatMap((id) => [`v:${id}`, `hb:${id}`, `hbid:${id}`]);
    const [removed] = await Promise.all([this.redis.zrem(this.keys.members, ...ids), this.redis.hdel(this.keys.cluster, ...fields)]);
    return removed;
  }

  /** One instance's latest heartbeat: its stored heartbeat and its last feed entry within `windowMs` (the duplicate-instance check). */
  async readMember(id: string, windowMs: number): Promise<StoredHeartbeat> {
    const r = tuple("readMember", await this.run("readMember", [this.keys.feed, this.keys.cluster], [id, String(Math.max(1, Math.round(windowMs)))]), 3);
    const mark = str("readMember", r[1], "feed id");
    const time = int("readMember", r[2], "time");
    return { heartbeat: decodeHeartbeat(str("readMember", r[0], "heartbeat")), mark: mark === "" ? undefined : mark, silentMs: mark === "" ? undefined : Math.max(0, time - feedMs(mark)) };
  }

  /** "1" while no leader is live in the cluster hash: the reply then carries the old leader info key too. */
  private wantOldLeader(): string {
    return this.watch.live(this.clock.now()) ? "0" : "1";
  }

  /**
   * The live leader from one read: the cluster hash's info as the watch judges it, else
   * the old key's (it has its own TTL) unless it names the same term as the stale info in
   * the hash (that leader's own copy, not yet expired).
   */
  private leaderFrom(raw: string, pub: string, oldRaw: string, redisNowMs: number): LeaderInfo | undefined {
    const info = decodeLeaderInfo(raw);
    const live = this.watch.observe({ info, pub, redisNowMs: redisNowMs > 0 ? redisNowMs : undefined }, this.clock.now());
    if (live) return live;
    const old = decodeLeaderInfo(oldRaw);
    return old && !(info && info.id === old.id && info.epoch === old.epoch) ? old : undefined;
  }

  private run(name: ScriptName, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const command = (this.redis as unknown as Record<string, ScriptCommand>)[COMMANDS[name][0]]!;
    return command.call(this.redis, ...keys, ...args);
  }
}
