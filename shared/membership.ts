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
  /** Whether the member's Redis heartbeat key exists right now. */
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
}

export interface TrackerOptions {
  /** The Redis channel: only its atomic snapshot read is needed. */
  readonly protocol: Pick<RedisProtocol, "snapshot">;
  /** The second channel. Without it (tests of the Redis view alone) Redis decides alone. */
  readonly pg?: PgHeartbeatReader;
  readonly clock: Clock;
  readonly heartbeatTimeoutMs: number;
  readonly heartbeatWarningMs: number;
  /** A read gap longer than this means we were not watching: restart every member's clock. */
  readonly maxGapMs: number;
  /** REQUIRE_WORKER: a member whose worker is down weighs nothing in the hash. */
  readonly requireWorker?: boolean;
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

  /** Starts watching ids known from elsewhere (e.g. assignment rows) even without a key. */
  watch(ids: Iterable<string>): void {
    const now = this.o.clock.now();
    for (const id of ids) if (!this.entries.has(id)) this.entries.set(id, this.newEntry(undefined, now));
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
    const [r, p] = await Promise.allSettled([this.o.protocol.snapshot(), this.o.pg ? this.o.pg.readAll() : Promise.resolve(undefined)]);
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
      this.lastReadAt[c] = now;
    }

    const progressed = new Set<string>();
    const observe = (c: Channel, id: string, hb: Heartbeat | undefined) => {
      let entry = this.entries.get(id);
      if (!entry) {
        entry = this.newEntry(hb, now);
        this.entries.set(id, entry);
      }
      const mark = hb ? `${hb.session}:${hb.seq}` : "";
      if (hb && mark !== entry.marks[c]) {
        entry.marks[c] = mark;
        entry.progressAt[c] = now;
        progressed.add(id);
        if (!entry.hb || isNewer(hb, entry.hb)) entry.hb = hb;
      }
    };
    const seen = new Set<string>();
    for (const m of raw?.members ?? []) {
      seen.add(m.id);
      observe("redis", m.id, m.heartbeat);
      this.entries.get(m.id)!.present = !!m.heartbeat;
    }
    for (const row of pgRows ?? []) observe("postgres", row.id, row.heartbeat);

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
    };
    this.last = snap;
    return snap;
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
