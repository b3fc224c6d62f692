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
import type { Clock } from "./clock.js";
import type { RawSnapshot, RedisProtocol } from "./redis-protocol.js";
import type { Heartbeat, LeaderInfo, Mode, StreamId } from "./types.js";

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
  readonly protocol: RedisProtocol;
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
    let raw: RawSnapshot;
    try {
      raw = await this.o.protocol.snapshot();
    } catch (err) {
      this.lastReadAt = undefined; // a gap: the next successful read restarts all clocks
      throw err;
    }
    const now = this.o.clock.now();
    const gap = this.lastReadAt === undefined || started - this.lastReadAt > this.o.maxGapMs;
    const newIncarnation = raw.incarnation !== this.incarnation;
    const restart = gap || newIncarnation;
    this.incarnation = raw.incarnation;
    this.lastReadAt = now;

    const seen = new Set<string>();
    for (const { id, heartbeat: hb, pttlMs: pttl } of raw.members) {
      seen.add(id);
      const entry = this.entries.get(id);
      const mark = hb ? `${hb.session}:${hb.seq}` : "";
      if (!entry) {
        this.entries.set(id, { hb, present: !!hb, progressAt: now, firstSeenAt: now, mark, dead: false });
        continue;
      }
      if (hb && mark !== entry.mark) {
        // Progress happened when the key was written, not when we read it: Redis measured
        // the key's age (TTL − PTTL) on its own clock. Dating it back makes every tracker
        // agree on when a member went silent, within one read.
        const ttl = typeof hb.ttlMs === "number" ? hb.ttlMs : 0; // the writer's own TTL
        const age = pttl > 0 && ttl > 0 ? Math.min(ttl, Math.max(0, ttl - pttl)) : 0;
        entry.progressAt = Math.max(entry.progressAt, now - age);
        entry.mark = mark;
      }
      if (hb) entry.hb = hb;
      entry.present = !!hb;
    }
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
      leader: raw.leader,
      flag: raw.flag,
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

/**
 * The hashing weight of a member: its capacity while it is live, not draining and not
 * leaving; 0 otherwise. Agents and the leader both use this, so they compute the same
 * owners for the same snapshot.
 */
export function hashWeight(m: MemberView): number {
  if (m.status === "dead" || m.status === "left" || !m.hb) return 0;
  if (m.hb.draining || m.hb.leaving) return 0;
  return Math.max(0, m.hb.capacity);
}

/** Streams that live members (other than `except`) report holding. */
export function heldByOthers(snap: Snapshot, except: string): Map<StreamId, string> {
  const out = new Map<StreamId, string>();
  for (const m of snap.members.values()) {
    if (m.id === except || m.status === "dead" || m.status === "left" || !m.hb) continue;
    for (const s of m.hb.held) out.set(s, m.id);
  }
  return out;
}
