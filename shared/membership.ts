/**
 * The membership tracker: every agent's view of who is alive, read from the heartbeats
 * members write to BOTH liveness channels, Redis and PostgreSQL (shared/pg-heartbeats.ts).
 * It runs on every agent all the time (not only on the leader), so a freshly elected
 * leader already has its own observations.
 *
 * Safety rule (client-go's: trust only what you observed yourself, on your own clock):
 * a member is DEAD only after this tracker has watched BOTH channels, without a gap,
 * and seen no heartbeat progress on either for HEARTBEAT_TIMEOUT. Progress = a new
 * (session, seq), dated when this tracker read it (never by another host's or Redis's
 * clock). Whenever the tracker could not watch a channel (a failed read, a pause of this
 * process, Redis losing its data = a new incarnation), that channel's clocks restart for
 * every member not already dead, and while a channel cannot be read nobody new is
 * declared dead: a member that reaches only the other store is not silent. (Unless the
 * member's own last heartbeat said it could not confirm on that channel either, as in an
 * outage of that store for everyone: then it is judged on the channels it could use.)
 *
 * Why this is enough: an agent renews its worker's lease only from heartbeats one of the
 * channels confirmed, for WORKER_LEASE < HEARTBEAT_TIMEOUT, so when neither channel has
 * shown progress for HEARTBEAT_TIMEOUT the worker's lease has run out.
 *
 * Cost: only DECIDERS (the leader, hashing agents; `decider` says when) read the
 * membership, and on Redis only what changed since their last read (the heartbeat feed,
 * shared/feed-mirror.ts; the whole feed on a first read or after a gap). Every other agent
 * watches the leader alone: its Redis progress comes with this agent's own heartbeat
 * replies (`observeReply`), its PostgreSQL row with this agent's own heartbeat write
 * (`pgWatch`, `observePgReply`; read by id when that write's answer is older than a gap,
 * older than a read of its own, or named another leader). Either counts as a read made
 * when it arrived; progress in it is dated when the tracker takes it in, never earlier.
 * A follower that becomes a
 * decider keeps what it observed of the leader (so a new leader can declare the old one
 * dead without watching it anew) and starts every other member's clocks at its first
 * full read, as a freshly started agent does.
 */
import type { Clock } from "./clock.js";
import { hashWeight } from "./member-state.js";
import type { StoredPgHeartbeat } from "./pg-heartbeats.js";
import type { RawSnapshot, RedisProtocol } from "./redis-protocol.js";
import type { Heartbeat, LeaderInfo, Mode } from "./types.js";

export type MemberStatus = "alive" | "warning" | "dead" | "left";

export interface MemberView {
  readonly id: string;
  /** Last heartbeat seen on either channel (kept after it stops, for display). */
  readonly hb: Heartbeat | undefined;
  /** Whether the member beat on Redis within its heartbeat's TTL (by Redis's clock, from the feed) as of the last read. */
  readonly present: boolean;
  readonly status: MemberStatus;
  /** Milliseconds since this tracker last saw progress on any channel (or began watching). */
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
  /** Local time the live set last changed in any way. */
  readonly viewChangedAt?: number;
  /** Which channels this read could see. */
  readonly channels: { readonly redis: boolean; readonly postgres: boolean };
  /** REQUIRE_WORKER as the hashing weights of this view were computed (member-state.ts). */
  readonly requireWorker?: boolean;
  /** A decider's read: every member (false: a follower's, the leader alone). */
  readonly whole?: boolean;
}

type Channel = "redis" | "postgres";

interface Entry {
  hb: Heartbeat | undefined;
  present: boolean;
  /** Local time of the last progress seen, per channel. */
  progressAt: Record<Channel, number>;
  marks: Record<Channel, string>;
  firstSeenAt: number;
  /** Dead as of the last read. */
  dead: boolean;
}

/** The minimal interface the tracker needs from the PostgreSQL channel. */
export interface PgHeartbeatReader {
  readAll(): Promise<StoredPgHeartbeat[]>;
  /** The rows of these members only (a follower watching the leader). Without it, readAll. */
  readSome?(ids: readonly string[]): Promise<StoredPgHeartbeat[]>;
}

/** What a follower learns from its own heartbeat's reply (shared/redis-protocol.ts HeartbeatReply). */
export interface ReplyView {
  readonly incarnation: string;
  readonly leader: LeaderInfo | undefined;
  readonly flag: ClusterFlag | undefined;
  readonly leaderMark: { readonly id: string; readonly mark: string } | undefined;
}

export interface TrackerOptions {
  /** The Redis channel: a decider's read (`full`: the whole feed, not what changed since the last read). */
  readonly protocol: { snapshot(full?: boolean, windowMs?: number): Promise<RawSnapshot> };
  /** The second channel. Without it (tests of the Redis view alone) Redis decides alone. */
  readonly pg?: PgHeartbeatReader;
  readonly clock: Clock;
  readonly heartbeatTimeoutMs: number;
  readonly heartbeatWarningMs: number;
  /** A read gap longer than this means we were not watching: restart every member's clock. */
  readonly maxGapMs: number;
  /** REQUIRE_WORKER: a member whose worker is down weighs nothing in the hash. */
  readonly requireWorker?: boolean;
  /** Whether this agent decides now (leads, or hashes, or may soon): reads the whole membership. Default: always. */
  readonly decider?: () => boolean;
}

export class MembershipTracker {
  private entries = new Map<string, Entry>();
  private lastReadAt: Record<Channel, number | undefined> = { redis: undefined, postgres: undefined };
  private incarnation: string | undefined;
  private last: Snapshot | undefined;
  private viewKey = "";
  private viewVersion = 0;
  private viewGrewAt = 0;
  private viewChangedAt = 0;
  private liveWeights = new Map<string, number>();
  private inflight: Promise<Snapshot> | undefined;
  private readonly channels: readonly Channel[];
  /** The last heartbeat reply (a follower's Redis read) and when it arrived. */
  private reply: { at: number; view: ReplyView } | undefined;
  /** What this agent's last PostgreSQL heartbeat write read of the members it watched, when it was sent and when its answer arrived. */
  private pgReply: { sentAt: number; at: number; ids: string; rows: StoredPgHeartbeat[] } | undefined;
  /** When the newest PostgreSQL read a follower used was sent: an answer to an older one is not used after it. */
  private pgSentAt = -Infinity;
  /** Whether the last read was a decider's. */
  private deciding = false;
  /** Until this local time the tracker decides whatever `decider` says (an operator asked for the whole view). */
  private wholeUntil = -Infinity;
  /** The leader a follower watches, and the one before it. */
  private followed: string | undefined;
  private previousFollowed: string | undefined;

  constructor(private readonly o: TrackerOptions) {
    this.channels = o.pg ? ["redis", "postgres"] : ["redis"];
  }

  get latest(): Snapshot | undefined {
    return this.last;
  }

  /** Reads both channels now (sharing a read in flight). Throws when neither can be read. */
  refresh(): Promise<Snapshot> {
    if (!this.inflight) {
      this.inflight = this.read().finally(() => {
        this.inflight = undefined;
      });
    }
    return this.inflight;
  }

  /**
   * The latest view if a read of the same kind (a decider's or a follower's, as the agent
   * decides now) completed within `maxAgeMs`, else a read now. For a periodic read that
   * another loop may have just made (a leader's tick reads at every tick); never for one
   * that must see what happened since (a handoff, a nudge): those call refresh().
   */
  refreshWithin(maxAgeMs: number): Promise<Snapshot> {
    const last = this.last;
    const now = this.o.clock.now();
    const deciding = (this.o.decider?.() ?? true) || now < this.wholeUntil;
    if (!this.inflight && last && now - last.at < maxAgeMs && last.whole === deciding) return Promise.resolve(last);
    return this.refresh();
  }

  /** Starts watching ids known from elsewhere (e.g. assignment rows) even without a key. */
  watch(ids: Iterable<string>): void {
    const now = this.o.clock.now();
    for (const id of ids) if (!this.entries.has(id)) this.entries.set(id, this.newEntry(undefined, now));
  }

  /**
   * The whole membership now (`reuse`: the last read if it was whole), for an operator's
   * view or a dry run on any agent: the tracker decides for `holdMs` from now (a follower's first whole read has watched nobody yet, so it
   * shows every member it sees as alive until it has watched it for a timeout).
   */
  async refreshWhole(holdMs: number, o: { reuse?: boolean } = {}): Promise<Snapshot> {
    this.wholeUntil = Math.max(this.wholeUntil, this.o.clock.now() + holdMs);
    if (o.reuse && this.last?.whole) return this.last;
    await this.inflight?.catch(() => undefined);
    return this.refresh();
  }

  /** A confirmed heartbeat's reply, received at local time `at`: a follower's view of Redis. */
  observeReply(view: ReplyView, at: number): void {
    this.reply = { at, view };
  }

  /**
   * The members a follower watches on PostgreSQL now (the leader, and the one before it),
   * for its own heartbeat write to read them in the same statement (`observePgReply`); none
   * while it decides, as it then reads everyone itself.
   */
  pgWatch(): string[] {
    if ((this.o.decider?.() ?? true) || this.o.clock.now() < this.wholeUntil) return [];
    const named = this.reply?.view.leaderMark?.id ?? this.reply?.view.leader?.id;
    const moved = !!named && named !== this.followed;
    return [...new Set([moved ? named : this.followed, moved ? this.followed : this.previousFollowed])].filter((x): x is string => !!x);
  }

  /**
   * What a heartbeat write sent at local time `sentAt` and confirmed at `at` read of the
   * members `pgWatch` named: a follower's PostgreSQL read.
   */
  observePgReply(ids: readonly string[], rows: StoredPgHeartbeat[], at: number, sentAt: number): void {
    this.pgReply = { sentAt, at, ids: [...ids].sort().join(" "), rows };
  }

  /** Forgets a member entirely (it was removed for good). */
  forget(id: string): void {
    this.entries.delete(id);
  }

  private newEntry(hb: Heartbeat | undefined, now: number): Entry {
    return { hb, present: false, progressAt: { redis: now, postgres: now }, marks: { redis: "", postgres: "" }, firstSeenAt: now, dead: false };
  }

  private async read(): Promise<Snapshot> {
    const started = this.o.clock.now();
    const deciding = (this.o.decider?.() ?? true) || started < this.wholeUntil;
    const switched = deciding !== this.deciding;
    this.deciding = deciding;
    let r: PromiseSettledResult<RawSnapshot>;
    let p: PromiseSettledResult<StoredPgHeartbeat[] | undefined>;
    /** Local time of this Redis read (a follower's: its last heartbeat reply). */
    let redisReadAt: number | undefined;
    /** Local time of this PostgreSQL read (a follower's: its last heartbeat write's, when it read the members watched now). */
    let pgReadAt: number | undefined;
    if (deciding) {
      // First read, a gap, or back from following: the whole feed, not what changed.
      const last = this.lastReadAt.redis;
      const full = switched || last === undefined || started - last > this.o.maxGapMs;
      [r, p] = await Promise.allSettled([this.o.protocol.snapshot(full, 2 * this.o.heartbeatTimeoutMs), this.o.pg ? this.o.pg.readAll() : Promise.resolve(undefined)]);
    } else {
      const watched = this.followWatched(switched);
      const reply = this.reply;
      const fresh = !!reply && started - reply.at <= this.o.maxGapMs;
      r = fresh ? { status: "fulfilled", value: followerRaw(reply.view) } : { status: "rejected", reason: new Error("no heartbeat reply lately") };
      if (fresh) redisReadAt = reply.at;
      const pg = this.o.pg;
      const written = this.pgReply;
      // The write's answer, when recent, about the members watched now, and not older than a
      // read already used (a slow write answering after a read of our own would show less).
      if (pg && watched.length > 0 && written && started - written.at <= this.o.maxGapMs && written.sentAt >= this.pgSentAt && written.ids === [...watched].sort().join(" ")) {
        p = { status: "fulfilled", value: written.rows };
        pgReadAt = written.at;
        this.pgSentAt = written.sentAt;
      } else {
        p = !pg ? { status: "fulfilled", value: undefined } : watched.length === 0 ? { status: "fulfilled", value: [] } : await Promise.allSettled([pg.readSome ? pg.readSome(watched) : pg.readAll()]).then(([x]) => x);
        if (p.status === "fulfilled") this.pgSentAt = started;
      }
    }
    const now = this.o.clock.now();
    const raw: RawSnapshot | undefined = r.status === "fulfilled" ? r.value : undefined;
    const pgRows: StoredPgHeartbeat[] | undefined = p.status === "fulfilled" ? p.value : undefined;
    const ok: Record<Channel, boolean> = { redis: !!raw, postgres: !!this.o.pg && !!pgRows };
    // A channel we could not read is a gap: its next successful read restarts its clocks.
    for (const c of this.channels) if (!ok[c]) this.lastReadAt[c] = undefined;
    if (!ok.redis && !ok.postgres) throw r.status === "rejected" ? r.reason : new Error("no liveness channel could be read");

    const newIncarnation = !!raw && raw.incarnation !== this.incarnation;
    if (raw) this.incarnation = raw.incarnation;
    const restart: Record<Channel, boolean> = { redis: false, postgres: false };
    for (const c of this.channels) {
      if (!ok[c]) continue;
      const last = this.lastReadAt[c];
      restart[c] = last === undefined || started - last > this.o.maxGapMs || (c === "redis" && newIncarnation);
      this.lastReadAt[c] = (c === "redis" ? redisReadAt : pgReadAt) ?? now;
    }

    const progressed = new Set<string>();
    // Progress = a new mark from a member that is there (a heartbeat, or a follower's leader mark).
    const observe = (c: Channel, id: string, hb: Heartbeat | undefined, mark: string, there: boolean) => {
      let entry = this.entries.get(id);
      if (!entry) {
        entry = this.newEntry(hb, now);
        this.entries.set(id, entry);
      }
      if (there && mark !== "" && mark !== entry.marks[c]) {
        entry.marks[c] = mark;
        entry.progressAt[c] = now;
        progressed.add(id);
      }
      if (hb && (!entry.hb || isNewer(hb, entry.hb))) entry.hb = hb;
    };
    const seen = new Set<string>();
    for (const m of raw?.members ?? []) {
      seen.add(m.id);
      const present = m.present ?? !!m.heartbeat;
      observe("redis", m.id, m.heartbeat, m.mark ?? (m.heartbeat ? `${m.heartbeat.session}:${m.heartbeat.seq}` : ""), present);
      this.entries.get(m.id)!.present = present;
    }
    for (const row of pgRows ?? []) observe("postgres", row.id, row.heartbeat, `${row.heartbeat.session}:${row.heartbeat.seq}`, true);

    // A channel this tracker cannot read is down for everyone when every member heard from
    // lately (on a channel it can read) says its own last write there failed too.
    const recent = [...this.entries.values()].filter((e) => e.hb && this.channels.some((c) => ok[c] && now - e.progressAt[c] < this.o.heartbeatWarningMs));
    const downForAll = (c: Channel) => !ok[c] && recent.length > 0 && recent.every((e) => reportsDown(e.hb, c));
    for (const [id, entry] of this.entries) {
      if (raw && !seen.has(id)) entry.present = false;
      for (const c of this.channels) {
        // We were not watching this channel: restart its clock for everyone not already
        // known dead (a member that died before the gap can only come back by writing,
        // which the next read sees). When Redis lost its data (a new incarnation) absent
        // keys say nothing, and a member dead before may have come back unseen.
        if (restart[c] && (!entry.dead || (c === "redis" && newIncarnation))) entry.progressAt[c] = Math.max(entry.progressAt[c], now);
      }
      const timeout = deadAfterMs(this.o.heartbeatTimeoutMs, entry.hb);
      // A channel this tracker cannot read may be the one keeping the member alive, unless
      // the member itself last said it could not confirm there either, or that store is
      // down for everyone: then it is judged on the channels that can be read.
      const blind = this.channels.some((c) => !ok[c] && !downForAll(c) && !reportsDown(entry.hb, c));
      const judged = this.channels.filter((c) => ok[c]);
      const silentOnAll = judged.every((c) => now - entry.progressAt[c] >= timeout);
      // Blind: nobody new is declared dead; the dead stay dead until they show progress.
      entry.dead = blind ? entry.dead && !progressed.has(id) : silentOnAll;
    }

    const members = new Map<string, MemberView>();
    for (const [id, e] of this.entries) {
      const silentMs = now - Math.max(...this.channels.map((c) => e.progressAt[c]));
      let status: MemberStatus = e.dead ? "dead" : silentMs >= this.o.heartbeatWarningMs ? "warning" : "alive";
      // A leaving agent that reports holding nothing is a truthful goodbye: its streams may move now.
      if (e.hb?.leaving && e.hb.held.length === 0) status = "left";
      members.set(id, { id, hb: e.hb, present: e.present, status, silentMs, firstSeenAt: e.firstSeenAt });
    }
    this.updateView(members, now);
    const snap: Snapshot = {
      at: now,
      members,
      leader: raw ? raw.leader : this.last?.leader,
      flag: raw ? raw.flag : this.last?.flag,
      incarnation: this.incarnation,
      viewVersion: this.viewVersion,
      viewGrewAt: this.viewGrewAt,
      viewChangedAt: this.viewChangedAt,
      channels: { redis: ok.redis, postgres: ok.postgres },
      requireWorker: this.o.requireWorker ?? false,
      whole: deciding,
    };
    this.last = snap;
    return snap;
  }

  /**
   * A follower watches the leader alone (the one its heartbeat replies name, and the one
   * before, so a leader that just vanished is still watched): it forgets every other
   * member, whose clocks will start again if it becomes a decider.
   */
  private followWatched(switched: boolean): string[] {
    const named = this.reply?.view.leaderMark?.id ?? this.reply?.view.leader?.id;
    if (named && named !== this.followed) {
      this.previousFollowed = this.followed;
      this.followed = named;
    }
    const keep = new Set([this.followed, this.previousFollowed].filter((x): x is string => !!x));
    if (switched || this.entries.size > keep.size) for (const id of [...this.entries.keys()]) if (!keep.has(id)) this.entries.delete(id);
    return [...keep];
  }

  private updateView(members: ReadonlyMap<string, MemberView>, now: number): void {
    const weights = new Map<string, number>();
    for (const m of members.values()) {
      const w = hashWeight(m, this.o.requireWorker);
      if (w > 0) weights.set(m.id, w);
    }
    const key = [...weights].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([id, w]) => `${id}=${w}`).join(",");
    if (key === this.viewKey) return;
    let grew = false;
    for (const [id, w] of weights) if ((this.liveWeights.get(id) ?? 0) < w) grew = true;
    this.viewKey = key;
    this.viewVersion++;
    if (grew) this.viewGrewAt = now;
    this.viewChangedAt = now;
    this.liveWeights = weights;
  }
}

/** What a follower's heartbeat reply says of Redis, as a read: the leader's progress only. */
function followerRaw(v: ReplyView): RawSnapshot {
  const m = v.leaderMark;
  return { incarnation: v.incarnation, leader: v.leader, flag: v.flag, members: m ? [{ id: m.id, heartbeat: undefined, mark: m.mark, present: true }] : [] };
}

/** The member's last heartbeat says its previous write to channel `c` was not confirmed. */
function reportsDown(hb: Heartbeat | undefined, c: Channel): boolean {
  return c === "postgres" ? hb?.pgOk === false : hb?.redisOk === false;
}

/** Margin between a member's published worker lease and the silence that declares it dead. */
const LEASE_MARGIN_MS = 1000;

/**
 * How long a member must be silent before it is dead: the larger of this decider's
 * HEARTBEAT_TIMEOUT and the member's own (it publishes it, with its worker lease). During
 * a rolling change of HEARTBEAT_TIMEOUT or WORKER_LEASE, a decider with a shorter timeout
 * must not declare a member dead while that member's worker may still hold its lease.
 */
export function deadAfterMs(ownTimeoutMs: number, hb: Heartbeat | undefined): number {
  return Math.max(ownTimeoutMs, hb?.ttlMs ?? 0, hb?.leaseMs !== undefined ? hb.leaseMs + LEASE_MARGIN_MS : 0);
}

/**
 * Whether heartbeat `a` was written after `b` by the same member. One process numbers its
 * heartbeats with one growing `seq`, across its resync generations (whose sessions differ
 * only by a suffix); a later process (a restart) supersedes an earlier one.
 */
export function isNewer(a: Heartbeat, b: Heartbeat): boolean {
  if (a.startedAt !== b.startedAt) return a.startedAt > b.startedAt;
  return a.seq > b.seq;
}
