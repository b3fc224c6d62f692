/**
 * The Redis protocol: every command this project sends to Redis for coordination, with
 * typed arguments and decoded replies. Key names come from Keys (shared/keys.ts); the Lua
 * scripts are in shared/redis-scripts.ts, registered with ioredis `defineCommand`, which
 * sends EVALSHA and falls back to EVAL when Redis answers NOSCRIPT (after a restart or a
 * SCRIPT FLUSH).
 *
 * Two kinds of bad data, handled differently:
 * - a reply whose SHAPE is not what the script returns (wrong arity, a type, a version
 *   that is no integer) is a broken invariant: it throws ProtocolError;
 * - a stored document other processes wrote (a heartbeat, the leader info, the flag
 *   mirror, a nudge) that does not parse decodes to `undefined`, as if absent: one
 *   agent's bad write, or an older agent's, must not stop everyone else's heartbeats.
 */
import crypto from "node:crypto";
import type { Redis } from "ioredis";
import type { Keys } from "./keys.js";
import type { ClusterFlag } from "./membership.js";
import { FeedMirror } from "./feed-mirror.js";
import { CLEAR_LEADER, FEED_MAXLEN, FEED_READ, HEARTBEAT, PUBLISH_LEADER, PUBLISH_MODE, PUBLISH_VERSIONS, type ScriptDef } from "./redis-scripts.js";
import type { Heartbeat, LeaderInfo, Nudge } from "./types.js";

/** Redis answered something the protocol does not allow. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    readonly command: string,
    message: string,
    readonly reply: unknown,
  ) {
    super(`${command}: ${message}`);
  }
}

export interface HeartbeatReply {
  /** False when our key was gone before this write (expired, deleted, or Redis lost its data). */
  readonly existed: boolean;
  /** The assignment version the leader committed for us (0 if none). */
  readonly version: number;
  readonly flag: ClusterFlag | undefined;
  /** This Redis lifetime's id; it changes when Redis lost its data. */
  readonly incarnation: string;
  readonly leader: LeaderInfo | undefined;
  /** The leader's last heartbeat as the feed has it: its progress, for followers. */
  readonly leaderMark: { readonly id: string; readonly mark: string } | undefined;
  /** This heartbeat's feed id. */
  readonly feedId: string;
}

export interface RawMember {
  readonly id: string;
  /** The member's last heartbeat as last fetched; undefined when its key is gone (or unreadable). */
  readonly heartbeat: Heartbeat | undefined;
  /**
   * What changes with each of the member's heartbeats on this channel (the feed id of its
   * latest). Without it, the heartbeat's session and seq are the mark.
   */
  readonly mark?: string;
  /** Whether its heartbeat key exists; without it, whether `heartbeat` is defined. */
  readonly present?: boolean;
}

/** Everything the membership tracker reads, as one atomic read. */
export interface RawSnapshot {
  readonly incarnation: string | undefined;
  readonly leader: LeaderInfo | undefined;
  readonly flag: ClusterFlag | undefined;
  readonly members: readonly RawMember[];
}

export interface StoredHeartbeat {
  readonly heartbeat: Heartbeat | undefined;
  readonly pttlMs: number;
}

/** ioredis command names the scripts are registered under (prefixed: they share a namespace with Redis commands). */
const COMMANDS = {
  heartbeat: ["fv7Heartbeat2", HEARTBEAT],
  feedRead: ["fv7FeedRead", FEED_READ],
  publishVersions: ["fv7PublishVersions", PUBLISH_VERSIONS],
  publishMode: ["fv7PublishMode", PUBLISH_MODE],
  publishLeader: ["fv7PublishLeader", PUBLISH_LEADER],
  clearLeader: ["fv7ClearLeader", CLEAR_LEADER],
} as const satisfies Record<string, readonly [string, ScriptDef]>;

type ScriptName = keyof typeof COMMANDS;
type ScriptCommand = (...args: string[]) => Promise<unknown>;

/** A whole read's window when the caller gives none: two default HEARTBEAT_TIMEOUTs. */
const DEFAULT_WINDOW_MS = 10_000;

/** A member's heartbeat says something new at least every this many beats, so deciders refresh its counters. */
const FULL_PAYLOAD_EVERY = 10;

/** A heartbeat without what changes at every beat: equal fingerprints say nothing new. */
function fingerprint(hb: Heartbeat): string {
  return JSON.stringify({ ...hb, seq: 0, worker: { ...hb.worker, lastSeenMsAgo: 0, processed: 0, errors: 0 } });
}

export class RedisProtocol {
  /** What the last confirmed heartbeat said, and how many beats ago it was sent whole. */
  private sent: { print: string; beats: number } | undefined;
  /** A decider's copy of the members' heartbeats, kept current from the feed. */
  private readonly mirror = new FeedMirror();

  constructor(
    private readonly redis: Redis,
    readonly keys: Keys,
    /** Where a fresh incarnation id comes from (used only when Redis has none). */
    private readonly newIncarnation: () => string = () => crypto.randomUUID(),
  ) {
    for (const [command, def] of Object.values(COMMANDS)) {
      if (!(command in redis)) redis.defineCommand(command, { numberOfKeys: def.numberOfKeys, lua: def.lua });
    }
  }

  /**
   * Writes our heartbeat (TTL `ttlMs`) and reads back what the agent acts on: one round
   * trip, a constant number of commands. Marks the feed entry new when the heartbeat says
   * something the previous confirmed one did not (or every FULL_PAYLOAD_EVERY beats).
   */
  async heartbeat(hb: Heartbeat, ttlMs: number): Promise<HeartbeatReply> {
    const k = this.keys;
    const print = fingerprint(hb);
    const prev = this.sent;
    const changed = !prev || prev.print !== print || prev.beats + 1 >= FULL_PAYLOAD_EVERY;
    this.sent = undefined; // until confirmed: after a failed write the next one is marked new
    const reply = await this.run("heartbeat", [k.heartbeat(hb.id), k.feed, k.cluster, k.leaderInfo], [hb.id, JSON.stringify(hb), String(ttlMs), this.newIncarnation(), changed ? "1" : "0", String(FEED_MAXLEN)]);
    const r = tuple("heartbeat", reply, 7);
    if (r[0] !== 0 && r[0] !== 1) throw new ProtocolError("heartbeat", "existed is not 0 or 1", reply);
    const incarnation = str("heartbeat", r[3], "incarnation");
    if (incarnation === "") throw new ProtocolError("heartbeat", "empty incarnation", reply);
    const feedId = str("heartbeat", r[6], "feed id");
    if (feedId === "") throw new ProtocolError("heartbeat", "empty feed id", reply);
    this.sent = { print, beats: changed || !prev ? 0 : prev.beats + 1 };
    return {
      existed: r[0] === 1,
      version: int("heartbeat", r[1], "version"),
      flag: decodeFlag(str("heartbeat", r[2], "mode")),
      incarnation,
      leader: decodeLeaderInfo(str("heartbeat", r[4], "leader info")),
      leaderMark: decodeLeaderMark(str("heartbeat", r[5], "leader mark")),
      feedId,
    };
  }

  /**
   * The members and their heartbeats, the leader info, the flag mirror and the
   * incarnation, for a decider: the feed after the last read (when `full`, on a first read
   * or after Redis lost its data: the last `windowMs` of it), then the heartbeats that changed. Two
   * round trips at most; the commands do not grow with the fleet, the replies with what changed.
   */
  async snapshot(full = false, windowMs = DEFAULT_WINDOW_MS): Promise<RawSnapshot> {
    const k = this.keys;
    const cursor = full ? "" : this.mirror.cursor;
    const reply = await this.run("feedRead", [k.feed, k.cluster, k.leaderInfo], [cursor, String(Math.max(1, Math.round(windowMs)))]);
    const r = tuple("snapshot", reply, 7);
    const incarnation = str("snapshot", r[0], "incarnation");
    const ids = list("snapshot", r[3], "ids").map((x) => str("snapshot", x, "id"));
    const feedIds = list("snapshot", r[4], "feed ids").map((x) => str("snapshot", x, "feed id"));
    const changed = list("snapshot", r[5], "changed").map((x) => str("snapshot", x, "changed") === "1");
    if (feedIds.length !== ids.length || changed.length !== ids.length) throw new ProtocolError("snapshot", "ids, feed ids and flags differ in length", reply);
    const last = str("snapshot", r[6], "last");
    // Redis lost its data since the cursor was taken: the new feed's early entries may sort before it.
    if (cursor !== "" && this.mirror.isNewIncarnation(incarnation)) return this.snapshot(true, windowMs);
    const fetch = this.mirror.apply({ incarnation, full: cursor === "", ids, feedIds, changed, last });
    if (fetch.length > 0) {
      const payloads = await this.redis.mget(...fetch.map((id) => k.heartbeat(id)));
      this.mirror.fetched(fetch, payloads.map((p) => (p === null ? undefined : decodeHeartbeat(p))));
    }
    return {
      incarnation: incarnation === "" ? undefined : incarnation,
      leader: decodeLeaderInfo(str("snapshot", r[1], "leader info")),
      flag: decodeFlag(str("snapshot", r[2], "mode")),
      members: this.mirror.members(),
    };
  }

  /** Writes who leads, only while `token` still holds the lease. True when written. */
  async publishLeader(token: string, info: LeaderInfo, ttlMs: number): Promise<boolean> {
    const reply = await this.run("publishLeader", [this.keys.leader, this.keys.leaderInfo], [token, JSON.stringify(info), String(ttlMs)]);
    return flag01("publishLeader", reply);
  }

  /** Removes the leader info if it names `id` (it stopped leading). True when removed. */
  async clearLeader(id: string): Promise<boolean> {
    return flag01("clearLeader", await this.run("clearLeader", [this.keys.leaderInfo], [id]));
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

  /** Forgets members for good: their versions and their place in the members set and in this decider's copy. Returns how many were in the set. */
  async pruneMembers(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    this.mirror.forget(ids);
    const [removed] = await Promise.all([this.redis.zrem(this.keys.members, ...ids), this.redis.hdel(this.keys.cluster, ...ids.map((id) => `v:${id}`))]);
    return removed;
  }

  /** One instance's stored heartbeat and its key's PTTL, read atomically (the duplicate-instance check). */
  async readHeartbeat(id: string): Promise<StoredHeartbeat> {
    const key = this.keys.heartbeat(id);
    const reply = await this.redis.multi().get(key).pttl(key).exec();
    if (!reply || reply.length !== 2) throw new ProtocolError("readHeartbeat", "transaction did not run", reply);
    const [[getErr, raw], [pttlErr, pttl]] = reply as [[Error | null, unknown], [Error | null, unknown]];
    if (getErr) throw getErr;
    if (pttlErr) throw pttlErr;
    if (raw !== null && typeof raw !== "string") throw new ProtocolError("readHeartbeat", "GET is not a string", reply);
    return { heartbeat: decodeHeartbeat(raw ?? ""), pttlMs: int("readHeartbeat", pttl, "pttl") };
  }

  private run(name: ScriptName, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const command = (this.redis as unknown as Record<string, ScriptCommand>)[COMMANDS[name][0]]!;
    return command.call(this.redis, ...keys, ...args);
  }
}

// ---- stored documents: undefined when unreadable ------------------------------------

export function decodeHeartbeat(raw: string): Heartbeat | undefined {
  const v = json(raw);
  if (!v || typeof v.id !== "string" || typeof v.seq !== "number" || !Array.isArray(v.held)) return undefined;
  return v as unknown as Heartbeat;
}

export function decodeLeaderInfo(raw: string): LeaderInfo | undefined {
  const v = json(raw);
  if (!v || typeof v.id !== "string" || typeof v.epoch !== "number") return undefined;
  return v as unknown as LeaderInfo;
}

/** "<feed id> <leader id>", as the heartbeat script writes it; undefined when absent or unreadable. */
export function decodeLeaderMark(raw: string): { id: string; mark: string } | undefined {
  const at = raw.indexOf(" ");
  return at > 0 && at < raw.length - 1 ? { mark: raw.slice(0, at), id: raw.slice(at + 1) } : undefined;
}

export function decodeFlag(raw: string): ClusterFlag | undefined {
  const v = json(raw);
  if (!v || (v.mode !== "orchestrated" && v.mode !== "hashed") || typeof v.version !== "number") return undefined;
  return v as unknown as ClusterFlag;
}

/** A message from the nudge channel; undefined for anything this version does not know. */
export function decodeNudge(raw: string): Nudge | undefined {
  const v = json(raw);
  if (!v) return undefined;
  switch (v.t) {
    case "assign":
      return typeof v.epoch === "number" && !!v.versions && typeof v.versions === "object" ? (v as unknown as Nudge) : undefined;
    case "ack":
    case "drain":
      return typeof v.id === "string" ? (v as unknown as Nudge) : undefined;
    case "mode":
      return v.mode === "orchestrated" || v.mode === "hashed" ? (v as unknown as Nudge) : undefined;
    case "leader":
      return typeof v.epoch === "number" ? (v as unknown as Nudge) : undefined;
    case "rebalance":
      return v as unknown as Nudge;
    default:
      return undefined;
  }
}

function json(raw: string): Record<string, unknown> | undefined {
  if (!raw) return undefined;
  try {
    const v: unknown = JSON.parse(raw);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // see the header: an unreadable document counts as absent
  }
}

// ---- reply shapes: ProtocolError when wrong -----------------------------------------

function tuple(command: string, reply: unknown, n: number): unknown[] {
  if (!Array.isArray(reply) || reply.length !== n) throw new ProtocolError(command, `expected an array of ${n}`, reply);
  return reply;
}

function list(command: string, v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new ProtocolError(command, `${what} is not an array`, v);
  return v;
}

function str(command: string, v: unknown, what: string): string {
  if (typeof v !== "string") throw new ProtocolError(command, `${what} is not a string`, v);
  return v;
}

/** An integer, as Redis returns one (a number) or as a script passes a stored one (a decimal string). */
function int(command: string, v: unknown, what: string): number {
  const n = typeof v === "number" ? v : typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new ProtocolError(command, `${what} is not an integer`, v);
  return n;
}

function flag01(command: string, v: unknown): boolean {
  if (v !== 0 && v !== 1) throw new ProtocolError(command, "expected 0 or 1", v);
  return v === 1;
}
