/**
 * One member of the fleet benchmark (bench/fleet.ts): an agent's coordination parts, the
 * real code, with the connections shared among the members of one process and a fake
 * worker that holds exactly the rows the leader wrote for this member's session.
 *
 * Real: the heartbeat to both liveness channels and the membership tracker
 * (agent/liveness.ts), the elector and the leader loop (agent/leadership.ts), the own-rows
 * read (shared/store.ts), the nudge handling (agent/nudges.ts), the loops (agent/loops.ts).
 * Left out: the worker API, the offer logic (agent/offer.ts: a fake worker holds its
 * trusted rows at once), the HTTP server, one Metrics registry and one set of
 * connections per member. So the Redis and PostgreSQL traffic per member is an agent's,
 * and the memory per member is a lower bound of an agent process's. Not for production.
 */
import crypto from "node:crypto";
import type { Redis } from "ioredis";
import { CatalogCache } from "../shared/catalog-cache.js";
import { Waker, type Clock } from "../shared/clock.js";
import { loadConfig, type Config } from "../shared/config.js";
import type { Sql } from "../shared/db.js";
import { Keys } from "../shared/keys.js";
import { LegacyView } from "../shared/legacy.js";
import type { Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import { RedisProtocol } from "../shared/redis-protocol.js";
import { Store, type OwnAssignment } from "../shared/store.js";
import { StreamHealthStore } from "../shared/stream-health-store.js";
import { LeaderStore } from "../leader/store.js";
import { Beliefs } from "../agent/beliefs.js";
import { Leadership } from "../agent/leadership.js";
import { createLiveness, type Liveness } from "../agent/liveness.js";
import { repeat } from "../agent/loops.js";
import { onNudge, type NudgeTargets } from "../agent/nudges.js";
import { register } from "../agent/startup.js";

/** What the members of one process share. */
export interface FleetShared {
  readonly env: Readonly<Record<string, string>>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The agents' work (rows, catalog, tracker reads, the leader's transactions). */
  readonly sql: Sql;
  /** The PostgreSQL heartbeats. */
  readonly hbSql: Sql;
  /** The leader's epoch and fenced writes (leader/store.ts). */
  readonly leaderSql: Sql;
  readonly redis: Redis;
}

export class FleetMember {
  readonly config: Config;
  readonly session = crypto.randomUUID();
  readonly leadership: Leadership;
  private readonly liveness: Liveness;
  private readonly store: Store;
  private readonly closing = new AbortController();
  private readonly wakeOwn: Waker;
  private readonly wakeHeartbeat: Waker;
  private loops: Promise<void>[] = [];
  private own: OwnAssignment | undefined;
  /** Who leads as far as this member knows: the agent's own rules (agent/beliefs.ts). */
  private readonly beliefs: Beliefs;
  /** What the fake worker processes now. */
  held: readonly string[] = [];
  /** Local time this member first held something (undefined before). */
  firstHeldAt: number | undefined;
  readonly nudges: NudgeTargets;

  constructor(
    private readonly s: FleetShared,
    readonly id: string,
    readonly capacity: number,
  ) {
    this.config = loadConfig({ ...s.env, INSTANCE_ID: id, MAX_STREAMS: String(capacity) });
    const { config } = this;
    const clock = s.clock;
    const keys = new Keys(config.redisKeyPrefix);
    const protocol = new RedisProtocol(s.redis, keys);
    this.store = new Store(s.sql, config.schema);
    this.wakeOwn = new Waker(clock, this.closing.signal);
    this.wakeHeartbeat = new Waker(clock, this.closing.signal);
    const logger = s.logger.child({ instance: id });
    const catalog = new CatalogCache(s.sql, { table: config.streamsTable, idColumn: config.streamsIdColumn }, clock, logger);
    const legacy = LegacyView.fromConfig(config, s.sql, clock);
    const startedAtWall = clock.wall();
    this.beliefs = new Beliefs({ clock, view: () => this.liveness.tracker.latest, maxViewAgeMs: config.timings.maxViewAgeMs, wholeViewLeaderlessMs: config.timings.wholeViewLeaderlessMs });
    // The offer logic is left out: the time a ready leader was last in sight (agent/offer.ts
    // lastLeaderSeenAt, which FALLBACK_GRACE and the deciders count from) is kept here.
    let lastLeaderSeenAt = clock.now();
    this.liveness = createLiveness({
      config,
      clock,
      logger,
      metrics: s.metrics,
      sql: s.sql,
      hbSql: s.hbSql,
      protocol,
      startedAtWall,
      serving: { renew: () => {}, leaseDeadline: 0, leaseValid: () => true },
      state: () => ({
        session: this.session,
        capacity,
        draining: false,
        mode: "orchestrated",
        version: this.own?.version ?? 0,
        held: this.held,
        leaving: false,
        restarting: false,
        released: [],
        worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" },
      }),
      decider: () => {
        if (this.beliefs.leaderInfo?.ready) lastLeaderSeenAt = clock.now();
        return this.beliefs.decides({ leading: this.leadership.elector.isLeader(), mode: "orchestrated", useOrchestrator: true, lastLeaderSeenAt });
      },
      resyncing: () => false,
      requireResync: () => {},
      onReply: (reply) => {
        this.beliefs.observeReply(reply.leader, reply.flag);
        this.leadership.elector.poke();
        if (this.own && reply.version > this.own.version) this.wakeOwn.wake();
      },
      onReleased: () => void protocol.publishNudge({ t: "ack", id }).catch(() => {}),
    });
    this.leadership = new Leadership({
      id,
      config,
      clock,
      logger,
      protocol,
      tracker: this.liveness.tracker,
      store: new LeaderStore(s.leaderSql, config.schema),
      catalog,
      legacy,
      metrics: s.metrics,
      forgetHeartbeats: (ids) => this.liveness.pgHeartbeats.forget(ids),
      health: new StreamHealthStore(s.sql, config.schema),
      requireWorker: config.requireWorker,
      lockClients: [s.redis],
      leaseKey: keys.leader,
      acquireInMs: () => this.beliefs.acquireInMs(),
    });
    this.nudges = {
      id,
      ownVersion: () => this.own?.version ?? 0,
      leading: () => this.leadership.elector.isLeader(),
      reloadOwn: () => this.wakeOwn.wake(),
      refreshView: () => void this.liveness.tracker.refresh().catch(() => {}),
      leader: this.leadership.leader,
    };
  }

  get leading(): boolean {
    return this.leadership.elector.isLeader();
  }

  async start(): Promise<void> {
    await register(this.store, this.config, this.capacity);
    const ctx = { clock: this.s.clock, logger: this.s.logger, signal: this.closing.signal };
    const every = this.config.heartbeatIntervalMs;
    this.loops.push(repeat(ctx, "heartbeat", every, () => this.liveness.heartbeat.beat(), this.wakeHeartbeat));
    this.loops.push(repeat(ctx, "tracker", every, () => this.liveness.tracker.refresh()));
    this.loops.push(repeat(ctx, "own", this.config.timings.ownRowsReloadMs, () => this.loadOwn(), this.wakeOwn));
    this.leadership.elector.start();
  }

  /** A message from the cluster channel, handled as an agent's subscriber does. */
  nudge(message: string): void {
    onNudge(message, this.nudges);
  }

  async stop(): Promise<void> {
    this.closing.abort();
    await this.leadership.close();
    await Promise.allSettled(this.loops);
  }

  private async loadOwn(): Promise<void> {
    const own = await this.store.ownAssignment(this.id);
    this.own = own;
    // The fake worker: the rows this member's session was stamped for, at once; revoked rows are let go at once.
    const next = own.stampedSession === this.session ? own.active.map((r) => r.id) : [];
    const keep = new Set(next);
    const released = this.held.some((x) => !keep.has(x));
    this.held = next;
    if (next.length > 0) this.firstHeldAt ??= this.s.clock.now();
    if (released) this.wakeHeartbeat.wake();
  }
}
