/**
 * One agent: the sidecar beside one fingerv7 worker. Every node runs the same thing;
 * the one holding the lease also runs the leader loop. This file only composes the parts,
 * starts them and stops them; each rule lives in the part that owns it:
 *
 *   agent/connections.ts     the PostgreSQL pools and Redis clients, and why each exists
 *   agent/startup.ts         migrate, refuse a live twin, inherit the worker's rows, register
 *   agent/heartbeat.ts       the heartbeat step and when it renews the worker's lease
 *   agent/liveness.ts        both liveness channels wired: heartbeat writes, tracker reads
 *   agent/offer.ts           what is offered (resync, row trust, mode, acquisitions) PURE
 *   agent/offering.ts        when the offer is recomputed and how a decision is applied
 *   agent/worker-link.ts     the worker beside us, both APIs (offers, reports, capacity)
 *   agent/nudges.ts          the cluster channel's subscriber and what each nudge wakes
 *   agent/loops.ts           the periodic loops: step, sleep (or be woken), log failures
 *   agent/running.ts         what runs once joined: the nudge subscriber, the loops' steps
 *   agent/heartbeat-state.ts what the heartbeat says about this agent, from its parts
 *   agent/shutdown.ts        the graceful exit: drain or withdraw, within DRAIN_TIMEOUT
 *   agent/operator-actions.ts what an operator can ask of any agent
 *   agent/leadership.ts      the lease, the elector and the leader loop wired together
 *   agent/beliefs.ts         who leads and which flag holds, as far as this agent knows
 *   leader/                  election and the leader loop
 *
 * Components, started in this order and closed in reverse:
 *   Postgres (migrate, register) → Redis subscriber → loops (heartbeat to both liveness
 *   channels, tracker, own rows, catalog) → elector (→ leader loop while leading) →
 *   HTTP (main.ts).
 */
import crypto from "node:crypto";
import type { Redis } from "ioredis";
import { CatalogCache } from "../shared/catalog-cache.js";
import { Waker, type Clock } from "../shared/clock.js";
import type { Config } from "../shared/config.js";
import type { Sql } from "../shared/db.js";
import type { Probe } from "../shared/deadline.js";
import { Keys } from "../shared/keys.js";
import { LegacyView } from "../shared/legacy.js";
import type { Logger } from "../shared/logger.js";
import type { ClusterFlag, MembershipTracker, Snapshot } from "../shared/membership.js";
import { Metrics } from "../shared/metrics.js";
import { closeRedis } from "../shared/redis.js";
import { RedisProtocol } from "../shared/redis-protocol.js";
import type { PgHeartbeats } from "../shared/pg-heartbeats.js";
import { Store, type OwnAssignment } from "../shared/store.js";
import type { LeaderInfo, Mode, Nudge } from "../shared/types.js";
import type { Elector } from "../leader/elector.js";
import type { LeaderLoop } from "../leader/leader.js";
import { LeaderStore } from "../leader/store.js";
import { closeConnections, openConnections, probeConnections, type Connections } from "./connections.js";
import type { HeartbeatLoop } from "./heartbeat.js";
import { createLiveness } from "./liveness.js";
import { Beliefs } from "./beliefs.js";
import { StreamOutcomes } from "./stream-outcomes.js";
import { StreamHealthStore } from "../shared/stream-health-store.js";
import { Leadership } from "./leadership.js";
import { exitGracefully } from "./shutdown.js";
import { sessionOf } from "./offer.js";
import { Offering } from "./offering.js";
import { OperatorActions } from "./operator-actions.js";
import { join } from "./startup.js";
import { startRunning } from "./running.js";
import { heartbeatState } from "./heartbeat-state.js";
import { WorkerLink } from "./worker-link.js";

export type { Probe } from "../shared/deadline.js";
export { DuplicateInstanceError } from "./startup.js";

export interface AgentDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
}

export class Agent {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly worker: WorkerLink;
  readonly operator: OperatorActions;
  readonly elector: Elector;
  readonly leader: LeaderLoop;
  private readonly leadership: Leadership;
  readonly session = crypto.randomUUID();
  readonly startedAtWall: number;

  private readonly keys: Keys;
  /** Pools and clients, with why each exists (agent/connections.ts). */
  private readonly connections: Connections;
  /** The agent's PostgreSQL pools; tests end them to cut the database. */
  readonly sql: Sql;
  readonly opsSql: Sql;
  private readonly hbSql: Sql;
  private readonly pgHeartbeats: PgHeartbeats;
  private readonly redis: Redis;
  private readonly protocol: RedisProtocol;
  private readonly store: Store;
  private readonly tracker: MembershipTracker;
  private readonly catalog: CatalogCache;
  private readonly legacy: LegacyView;
  private readonly heartbeat: HeartbeatLoop;
  /** Stream health in PostgreSQL (shared/stream-health-store.ts). */
  readonly health: StreamHealthStore;
  private readonly outcomes: StreamOutcomes;
  private readonly offering: Offering;
  private readonly closing = new AbortController();
  private readonly wakeHeartbeat: Waker;
  private readonly wakeOwn: Waker;
  private readonly wakeCatalog: Waker;
  /** When start() began (the clock's time): the catalog copy's first read counts from it. */
  private startedAt = 0;
  private sub: Redis | undefined;
  private loops: Promise<void>[] = [];
  private readonly beliefs: Beliefs;
  private leaving = false;
  private restarting = false;
  private closed = false;
  private started = false;
  /** start() completed: the loops run and heartbeats were sent. */
  private running = false;

  constructor(deps: AgentDeps) {
    const { config, clock } = deps;
    const t = config.timings;
    this.config = config;
    this.clock = clock;
    this.logger = deps.logger.child({ instance: config.instanceId });
    this.keys = new Keys(config.redisKeyPrefix);
    this.metrics = new Metrics({ instance: config.instanceId });
    this.startedAtWall = clock.wall();
    this.wakeHeartbeat = new Waker(clock, this.closing.signal);
    this.wakeOwn = new Waker(clock, this.closing.signal);
    this.wakeCatalog = new Waker(clock, this.closing.signal);
    this.connections = openConnections(config);
    ({ sql: this.sql, opsSql: this.opsSql, hbSql: this.hbSql, redis: this.redis } = this.connections);
    this.protocol = new RedisProtocol(this.redis, this.keys, { clock });
    this.store = new Store(this.sql, config.schema);
    this.catalog = new CatalogCache(this.sql, { table: config.streamsTable, idColumn: config.streamsIdColumn, placementColumn: config.streamsPlacementColumn }, clock, this.logger.child({ component: "catalog" }));
    this.legacy = LegacyView.fromConfig(config, this.sql, clock);
    this.worker = new WorkerLink({
      clock,
      logger: this.logger.child({ component: "worker" }),
      metrics: this.metrics,
      agentId: config.instanceId,
      maxStreams: config.maxStreams,
      workerLeaseMs: config.workerLeaseMs,
      workerTimeoutMs: config.workerTimeoutMs,
      longPollCapMs: t.longPollCapMs,
      onHeldShrank: () => this.wakeHeartbeat.wake(),
      onReleased: () => {
        this.offering.afterChange();
        this.wakeHeartbeat.wake();
      },
      declared: { save: (capacity) => this.store.setDeclaredCapacity(this.id, capacity) },
      onOutcomes: (streams, until) => this.outcomes.report(streams, until),
    });
    this.beliefs = new Beliefs({ clock, view: () => this.tracker.latest, maxViewAgeMs: t.maxViewAgeMs, wholeViewLeaderlessMs: t.wholeViewLeaderlessMs });
    this.health = new StreamHealthStore(this.sql, config.schema);
    this.outcomes = new StreamOutcomes({ id: config.instanceId, clock, logger: this.logger.child({ component: "outcomes" }), store: this.health, timings: t, held: () => this.worker.serving.held() });
    ({ tracker: this.tracker, heartbeat: this.heartbeat, pgHeartbeats: this.pgHeartbeats } = createLiveness({
      config,
      clock,
      logger: this.logger,
      metrics: this.metrics,
      sql: this.sql,
      hbSql: this.hbSql,
      protocol: this.protocol,
      startedAtWall: this.startedAtWall,
      serving: this.worker.serving,
      state: (now) => heartbeatState(now, { session: this.sessionNow, capacity: this.capacity, own: this.own, leaving: this.leaving, restarting: this.restarting, labels: config.labels, worker: this.worker, outcomes: this.outcomes, offering: this.offering }),
      decider: () => this.beliefs.decides({ leading: this.elector.isLeader(), mode: this.mode, useOrchestrator: this.config.useOrchestrator, lastLeaderSeenAt: this.offering.state.lastLeaderSeenAt }),
      resyncing: () => this.offering.resyncing,
      requireResync: (now, why) => this.offering.requireResync(now, why),
      onReply: (reply) => {
        this.beliefs.observeReply(reply.leader, reply.flag);
        this.elector.poke();
        if (this.own && reply.version > this.own.version) this.wakeOwn.wake();
      },
      onReleased: () => this.publish({ t: "ack", id: this.id }),
    }));
    this.offering = new Offering({
      config,
      clock,
      logger: this.logger,
      metrics: this.metrics,
      session: this.session,
      worker: this.worker,
      tracker: this.tracker,
      catalog: this.catalog,
      legacy: this.legacy,
      reads: () => ({
        heartbeatOk: this.heartbeat.healthy,
        own: this.own,
        ownLoadedAt: this.beliefs.ownLoadedAt,
        flag: this.flag,
        leader: this.leaderInfo,
        leaving: this.leaving,
      }),
      wakeHeartbeat: () => this.wakeHeartbeat.wake(),
      wakeOwn: () => this.wakeOwn.wake(),
      signal: this.closing.signal,
    });
    this.leadership = new Leadership({
      id: config.instanceId,
      config,
      clock,
      logger: this.logger,
      protocol: this.protocol,
      tracker: this.tracker,
      store: new LeaderStore(this.sql, config.schema),
      catalog: this.catalog,
      legacy: this.legacy,
      metrics: this.metrics,
      forgetHeartbeats: (ids) => this.pgHeartbeats.forget(ids),
      health: this.health,
      requireWorker: config.requireWorker,
      lockClients: this.connections.lockClients,
      leaseKey: this.keys.leader,
      acquireInMs: () => this.beliefs.acquireInMs(),
    });
    this.elector = this.leadership.elector;
    this.leader = this.leadership.leader;
    this.operator = new OperatorActions({
      config,
      clock,
      logger: this.logger,
      store: new Store(this.opsSql, config.schema),
      opsSql: this.opsSql,
      tracker: this.tracker,
      catalog: this.catalog,
      legacy: this.legacy,
      leaderInfo: () => this.leaderInfo,
      dryRun: (epoch) => this.leader.dryRun(epoch),
      rebalanceHere: () => {
        if (!this.elector.isLeader()) return false;
        this.leader.requestRebalance();
        return true;
      },
      publish: (n) => this.publish(n),
      publishMode: (flag) => this.protocol.publishMode(flag).then(() => {}),
    });
  }

  get id(): string {
    return this.config.instanceId;
  }

  /** This process's session, with the resync generation: what the leader stamps rows for. */
  get sessionNow(): string {
    return sessionOf(this.session, this.offering.state);
  }

  get mode(): Mode {
    return this.offering.state.mode;
  }

  get modeExplanation(): string {
    return this.offering.state.modeReason;
  }

  get ownAssignment(): OwnAssignment | undefined {
    return this.own;
  }

  private get own(): OwnAssignment | undefined {
    return this.beliefs.own;
  }

  /** What this agent last heard about the leader (agent/beliefs.ts). */
  get leaderInfo(): LeaderInfo | undefined {
    return this.beliefs.leaderInfo;
  }

  get flag(): ClusterFlag | undefined {
    return this.beliefs.flag;
  }

  get heartbeatHealthy(): boolean {
    return this.heartbeat.healthy;
  }

  get heartbeatError(): string | undefined {
    return this.heartbeat.error;
  }

  /** What each liveness channel confirmed at the last beat, with the PostgreSQL channel's error. */
  get heartbeatChannels(): { readonly redis: boolean; readonly postgres: boolean; readonly postgresError: string | undefined } {
    return { ...this.heartbeat.channels, postgresError: this.heartbeat.postgresError };
  }

  /** This agent's membership view as last read (undefined before the first read). */
  get membership(): Snapshot | undefined {
    return this.tracker.latest;
  }

  /** Capacity announced to the cluster. */
  get capacity(): number {
    return this.worker.capacity();
  }

  /** Probes PostgreSQL (operator pool) and Redis; each answer within `timeoutMs` or a failure. */
  probeDependencies(timeoutMs: number): Promise<{ postgres: Probe; redis: Probe }> {
    return probeConnections(this.connections, this.clock, timeoutMs);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.startedAt = this.clock.now();
    const log = this.logger.child({ category: "STARTUP" });
    await join({
      config: this.config,
      clock: this.clock,
      logger: log,
      sql: this.sql,
      store: this.store,
      protocol: this.protocol,
      worker: this.worker,
      session: this.session,
      capacity: () => this.capacity,
      signal: this.closing.signal,
    });
    // A shutdown that came during the start ends it here: nothing was announced yet.
    if (this.closing.signal.aborted) return;
    log.info({ capacity: this.capacity, mode: this.mode }, "agent registered");
    ({ sub: this.sub, loops: this.loops } = startRunning({
      config: this.config, clock: this.clock, logger: this.logger, signal: this.closing.signal, channel: this.keys.channel, startedAt: this.startedAt,
      heartbeat: this.heartbeat, tracker: this.tracker, offering: this.offering, beliefs: this.beliefs, store: this.store, catalog: this.catalog, legacy: this.legacy,
      leader: this.leader, isLeader: () => this.elector.isLeader(), capacity: () => this.capacity,
      wakeHeartbeat: this.wakeHeartbeat, wakeOwn: this.wakeOwn, wakeCatalog: this.wakeCatalog,
    }));
    this.elector.start();
    this.running = true;
  }

  /** Graceful exit, bounded by DRAIN_TIMEOUT: hands off (or withdraws for a restart), then closes (agent/shutdown.ts). */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    // Only an agent whose loops run has anything to hand off or a heartbeat to say goodbye
    // with; one still starting (its schema perhaps not yet migrated) just stops.
    if (this.running && !this.leaving && !this.restarting) {
      await exitGracefully({
        clock: this.clock,
        logger: this.logger,
        drainTimeoutMs: this.config.drainTimeoutMs,
        shutdownDrain: this.config.shutdownDrain,
        signal: this.closing.signal,
        serving: this.worker.serving,
        announce: (how) => {
          if (how === "leaving") this.leaving = true;
          else this.restarting = true;
        },
        wakeHeartbeat: () => this.wakeHeartbeat.wake(),
        leaderMovesRows: () => !!this.leaderInfo?.ready && this.mode === "orchestrated",
        rowsLeft: () => (this.own?.active.length ?? 0) + (this.own?.revoking.length ?? 0),
        beat: () => this.heartbeat.beat(),
        isLeader: () => this.elector.isLeader(),
        resign: () => this.elector.resign(),
      });
    }
    await this.close();
  }

  /** Stops everything without handing off (tests, second signal). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    await this.leadership.close();
    await Promise.allSettled(this.loops);
    if (this.sub) await closeRedis(this.sub);
    await closeConnections(this.connections);
  }

  /**
   * The worker gave streams up (older API): stop offering them and tell the leader in the
   * next heartbeat, sent now, so it moves them at once. Returns the ids that were ours.
   */
  releaseStreams(ids: readonly string[]): string[] {
    return this.worker.release(ids, (id) => !!this.own?.active.some((r) => r.id === id));
  }

  /** Publishes a nudge (best effort: nudges only speed things up). */
  publish(n: Nudge): void {
    this.protocol.publishNudge(n).catch(() => {});
  }
}
