/**
 * The membership tracker: every agent's view of who is alive, read from Redis heartbeats.
 * It runs on every agent all the time (not only on the leader), so a freshly elected
 * leader already has its own observations.
 *
 * Safety rule (client-go's: trust only what you observed yourself, on your own clock):
 * a member is DEAD only after this tracker has watched it, without a gap, make no
 * heartbeat progress for HEARTBEAT_TIMEOUT. Progress = a new (session, seq). Whenever the
 * tracker could not watch (a failed read, a pause of this process, Redis losing its data
 * = a new incarnation), every member's clock restarts: after a Redis restart all keys are
 * gone at once, and that is not a mass death.
 *
 * Why this is enough: an agent renews its worker's lease only from heartbeats Redis
 * confirmed, for WORKER_LEASE < HEARTBEAT_TIMEOUT, so when the tracker has seen no
 * progress for HEARTBEAT_TIMEOUT the worker's lease has run out.
 */
import type { Redis } from "ioredis";
import type { Clock } from "./clock.js";
import type { Keys } from "./keys.js";
import { hashWeight } from "./member-state.js";
import type { Heartbeat, LeaderInfo, Mode } from "./types.js";

export type MemberStatus = "alive" | "warning" | "dead" | "left";

export interface MemberView {
  readonly id: string;
  /** Last heartbeat seen (kept after the key expires, for display). */
  readonly hb: Heartbeat | undefined;
  /** Whether the heartbeat key exists right now. */
  readonly present: boolean;
  readonly status: MemberStatus;
  /** Milliseconds since this tracker last saw progress (or began watching). */
  readonly silentMs: number;
  readonly firstSeenAt: number;
}

export interface ClusterFlag {
  readonly mode: Mode;
  readonly version: number;
}

export interface Snapshot {
  /** Local monotonic time the read completed. */
  readonly at: number;
  readonly members: ReadonlyMap<string, MemberView>;
  readonly leader: LeaderInfo | undefined;
  readonly flag: ClusterFlag | undefined;
  readonly incarnation: string | undefined;
  /** Bumps whenever the set of live members (or their hashing weight) changes. */
  readonly viewVersion: number;
  /** Local time the live set last GREW (a join or a weight change); removals do not count. */
  readonly viewGrewAt: number;
}

/**
 * One round trip that reads everything the tracker needs, atomically.
 * KEYS: none (standalone Redis; keys are built from the prefix in ARGV[1]).
 * ARGV[1] = key prefix. Returns {incarnation|'', leaderInfo|'', mode|'', ids[], payloads[], pttls[]}.
 */
const SNAPSHOT_LUA = `
local p = ARGV[1]
local ids = redis.call('ZRANGE', p .. ':members', 0, -1)
local payloads = {}
local ttls = {}
for i, id in ipairs(ids) do
  payloads[i] = redis.call('GET', p .. ':hb:' .. id) or ''
  ttls[i] = redis.call('PTTL', p .. ':hb:' .. id)
end
return {redis.call('GET', p .. ':incarnation') or '', redis.call('GET', p .. ':leader:info') or '', redis.call('GET', p .. ':mode') or '', ids, payloads, ttls}
`;

interface Entry {
  hb: Heartbeat | undefined;
  present: boolean;
  progressAt: number;
  firstSeenAt: number;
  mark: string;
  /** Dead as of the last successful read. */
  dead: boolean;
}

export interface TrackerOptions {
  readonly redis: Redis;
  readonly keys: Keys;
  readonly clock: Clock;
  readonly heartbeatTimeoutMs: number;
  readonly heartbeatWarningMs: number;
  /** A read gap longer than this means we were not watching: restart every member's clock. */
  readonly maxGapMs: number;
}

export class MembershipTracker {
  private entries = new Map<string, Entry>();
  private lastReadAt: number | undefined;
  private incarnation: string | undefined;
  private last: Snapshot | undefined;
  private viewKey = "";
  private viewVersion = 0;
  private viewGrewAt = 0;
  private liveWeights = new Map<string, number>();
  private inflight: Promise<Snapshot> | undefined;

  constructor(private readonly o: TrackerOptions) {}

  get latest(): Snapshot | undefined {
    return this.last;
  }

  /** Reads Redis now (sharing a read already in flight). Throws when Redis is unreachable. */
  refresh(): Promise<Snapshot> {
    if (!this.inflight) {
      this.inflight = this.read().finally(() => {
        this.inflight = undefined;
      });
    }
    return this.inflight;
  }

  /** Starts watching ids known from elsewhere (e.g. assignment rows) even without a key. */
  watch(ids: Iterable<string>): void {
    const now = this.o.clock.now();
    for (const id of ids) {
      if (!this.entries.has(id)) this.entries.set(id, { hb: undefined, present: false, progressAt: now, firstSeenAt: now, mark: "", dead: false });
    }
  }

  /** Forgets a member entirely (it was removed for good). */
  forget(id: string): void {
    this.entries.delete(id);
  }

  private async read(): Promise<Snapshot> {
    const started = this.o.clock.now();
    let raw: [string, string, string, string[], string[], number[]];
    try {
      raw = (await this.o.redis.eval(SNAPSHOT_LUA, 0, this.o.keys.prefix)) as typeof raw;
    } catch (err) {
      this.lastReadAt = undefined; // a gap: the next successful read restarts all clocks
      throw err;
    }
    const now = this.o.clock.now();
    const [inc, leaderRaw, modeRaw, ids, payloads, ttls] = raw;
    const gap = this.lastReadAt === undefined || started - this.lastReadAt > this.o.maxGapMs;
    const newIncarnation = (inc || undefined) !== this.incarnation;
    const restart = gap || newIncarnation;
    this.incarnation = inc || undefined;
    this.lastReadAt = now;

    const seen = new Set<string>();
    ids.forEach((id, i) => {
      seen.add(id);
      const hb = parseHeartbeat(payloads[i] ?? "");
      const entry = this.entries.get(id);
      const mark = hb ? `${hb.session}:${hb.seq}` : "";
      if (!entry) {
        this.entries.set(id, { hb, present: !!hb, progressAt: now, firstSeenAt: now, mark, dead: false });
        return;
      }
      if (hb && mark !== entry.mark) {
        // Progress happened when the key was written, not when we read it: Redis measured
        // the key's age (TTL − PTTL) on its own clock. Dating it back makes every tracker
        // agree on when a member went silent, within one read.
        const pttl = Number(ttls?.[i] ?? -1);
        const ttl = typeof hb.ttlMs === "number" ? hb.ttlMs : 0; // the writer's own TTL
        const age = pttl > 0 && ttl > 0 ? Math.min(ttl, Math.max(0, ttl - pttl)) : 0;
        entry.progressAt = Math.max(entry.progressAt, now - age);
        entry.mark = mark;
      }
      if (hb) entry.hb = hb;
      entry.present = !!hb;
    });
    for (const [id, entry] of this.entries) {
      if (!seen.has(id)) entry.present = false;
      // We were not watching: restart the clock of everyone not already known dead (a
      // member that died before a read gap can only come back by writing its key, which
      // the next read sees). When Redis lost its data (a new incarnation) absent keys say
      // nothing, and a member dead before may have come back unseen: restart everyone.
      if (newIncarnation || (restart && !entry.dead)) entry.progressAt = now;
      entry.dead = now - entry.progressAt >= this.o.heartbeatTimeoutMs;
    }

    const members = new Map<string, MemberView>();
    for (const [id, e] of this.entries) {
      const silentMs = now - e.progressAt;
      let status: MemberStatus = silentMs >= this.o.heartbeatTimeoutMs ? "dead" : silentMs >= this.o.heartbeatWarningMs ? "warning" : "alive";
      // A leaving agent that reports holding nothing is a truthful goodbye: its streams may move now.
      if (e.hb?.leaving && e.hb.held.length === 0) status = "left";
      members.set(id, { id, hb: e.hb, present: e.present, status, silentMs, firstSeenAt: e.firstSeenAt });
    }
    this.updateView(members, now);
    const snap: Snapshot = {
      at: now,
      members,
      leader: parseJson<LeaderInfo>(leaderRaw),
      flag: parseJson<ClusterFlag>(modeRaw),
      incarnation: this.incarnation,
      viewVersion: this.viewVersion,
      viewGrewAt: this.viewGrewAt,
    };
    this.last = snap;
    return snap;
  }

  private updateView(members: ReadonlyMap<string, MemberView>, now: number): void {
    const weights = new Map<string, number>();
    for (const m of members.values()) {
      const w = hashWeight(m);
      if (w > 0) weights.set(m.id, w);
    }
    const key = [...weights].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([id, w]) => `${id}=${w}`).join(",");
    if (key === this.viewKey) return;
    let grew = false;
    for (const [id, w] of weights) if ((this.liveWeights.get(id) ?? 0) < w) grew = true;
    this.viewKey = key;
    this.viewVersion++;
    if (grew) this.viewGrewAt = now;
    this.liveWeights = weights;
  }
}

export function parseHeartbeat(raw: string): Heartbeat | undefined {
  const v = parseJson<Heartbeat>(raw);
  if (!v || typeof v.id !== "string" || typeof v.seq !== "number" || !Array.isArray(v.held)) return undefined;
  return v;
}

function parseJson<T>(raw: string | null | undefined): T | undefined {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return undefined;
  }
}
