/**
 * One agent: the sidecar beside one fingerv7 worker. Every node runs the same thing;
 * the one holding the lease also runs the leader loop. This file only composes the parts,
 * starts them and stops them; each rule lives in the part that owns it:
 *
 *   agent/heartbeat.ts       the heartbeat step and when it renews the worker's lease
 *   agent/offer.ts           what is offered (resync, row trust, mode, acquisitions) PURE
 *   agent/worker-link.ts     the worker beside us, both APIs (offers, reports, capacity)
 *   agent/operator-actions.ts what an operator can ask of any agent
 *   leader/                  election and the leader loop
 *
 * Components, started in this order and closed in reverse:
 *   Postgres (migrate, register) → Redis → tracker → heartbeat → own-rows loader →
 *   subscriber → elector (→ leader loop while leading) → HTTP (main.ts).
 */
import crypto from "node:crypto";
import os from "node:os";
import type { Redis } from "ioredis";
import { CatalogCache } from "../shared/catalog-cache.js";
import { Waker, isAbortError, type Clock } from "../shared/clock.js";
import type { Config } from "../shared/config.js";
import { connect, type Sql } from "../shared/db.js";
import { probe, withTimeout, type Probe } from "../shared/deadline.js";
import { Keys } from "../shared/keys.js";
import { LegacyView } from "../shared/legacy.js";
import { FailureMemo, type Logger } from "../shared/logger.js";
import { liveIds } from "../shared/member-state.js";
import { MembershipTracker, type ClusterFlag, type Snapshot } from "../shared/membership.js";
import { Metrics } from "../shared/metrics.js";
import { closeRedis, createRedis, redisTargets } from "../shared/redis.js";
import { decodeNudge, RedisProtocol } from "../shared/redis-protocol.js";
import { migrate } from "../shared/schema.js";
import { PgHeartbeats } from "../shared/pg-heartbeats.js";
import { Store, type OwnAssignment } from "../shared/store.js";
import { SOFTWARE_VERSION, type Heartbeat, type LeaderInfo, type Mode, type Nudge } from "../shared/types.js";
import { Elector } from "../leader/elector.js";
import { RedlockLease } from "../leader/lease.js";
import { LeaderLoop } from "../leader/leader.js";
import { LeaderStore } from "../leader/store.js";
import { HeartbeatLoop } from "./heartbeat.js";
import { newerFlag } from "./mode.js";
import { beginResync, decideOffer, initialOfferState, sessionOf, type OfferState } from "./offer.js";
import { OperatorActions } from "./operator-actions.js";
import { WorkerLink } from "./worker-link.js";

export type { Probe } from "../shared/deadline.js";

export interface AgentDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
}

export class DuplicateInstanceError extends Error {
  override readonly name = "DuplicateInstanceError";
}

/** The shortest pause between two extra membership reads for blocked streams. */
const VIEW_REFRESH_MIN_MS = 100;
/** How often a shutdown checks whether its streams are gone. */
const SHUTDOWN_POLL_MS = 50;

export class Agent {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly worker: WorkerLink;
  readonly operator: OperatorActions;
  readonly elector: Elector;
  readonly leader: LeaderLoop;
  readonly session = crypto.randomUUID();
  readonly startedAtWall: number;

  private readonly keys: Keys;
  /** The agent's PostgreSQL pools; tests end them to cut the database. */
  readonly sql: Sql;
  readonly opsSql: Sql;
  /** One connection for the PostgreSQL heartbeat alone: it never queues behind other work. */
  private readonly hbSql: Sql;
  private readonly pgHeartbeats: PgHeartbeats;
  private readonly redis: Redis;
  private readonly protocol: RedisProtocol;
  private readonly lockClients: Redis[];
  private readonly store: Store;
  private readonly tracker: MembershipTracker;
  private readonly catalog: CatalogCache;
  private readonly legacy: LegacyView;
  private readonly heartbeat: HeartbeatLoop;
  private readonly closing = new AbortController();
  private readonly wakeHeartbeat: Waker;
  private readonly wakeOwn: Waker;
  private sub: Redis | undefined;
  private loops: Promise<void>[] = [];
  private seq = 0;
  private offerState: OfferState;
  private own: OwnAssignment | undefined;
  private ownLoadedAt = -Infinity;
  private lastReply: { at: number; leader: LeaderInfo | undefined; flag: ClusterFlag | undefined } | undefined;
  private leaving = false;
  private restarting = false;
  private viewRefreshPending = false;
  private lastViewRefreshAt = -Infinity;
  private leaderRun: Promise<void> | undefined;
  private closed = false;
  private started = false;

  constructor(deps: AgentDeps) {
    const { config, clock } = deps;
    const t = config.timings;
    this.config = config;
    this.clock = clock;
    this.logger = deps.logger.child({ instance: config.instanceId });
    this.keys = new Keys(config.redisKeyPrefix);
    this.metrics = new Metrics({ instance: config.instanceId });
    this.startedAtWall = clock.wall();
    this.offerState = initialOfferState(clock.now());
    this.wakeHeartbeat = new Waker(clock, this.closing.signal);
    this.wakeOwn = new Waker(clock, this.closing.signal);
    this.sql = connect(config.databaseUrl, { max: 4, connectTimeout: t.postgresConnectTimeoutS });
    // Operator reads and health probes get their own small pool: a burst of /health or
    // /status calls while PostgreSQL is away must never queue in front of the leader's
    // epoch bump or the agent's own assignment reads.
    this.opsSql = connect(config.databaseUrl, { max: 2, connectTimeout: 2 });
    this.hbSql = connect(config.databaseUrl, { max: 1, connectTimeout: t.postgresConnectTimeoutS });
    this.pgHeartbeats = new PgHeartbeats(this.hbSql, config.schema);
    const redisAt = redisTargets(config);
    this.redis = createRedis(redisAt[0]!, { commandTimeoutMs: t.redisCommandTimeoutMs });
    this.lockClients = [this.redis, ...redisAt.slice(1).map((at) => createRedis(at, { commandTimeoutMs: t.redisCommandTimeoutMs }))];
    this.protocol = new RedisProtocol(this.redis, this.keys);
    this.store = new Store(this.sql, config.schema);
    this.tracker = new MembershipTracker({
      protocol: this.protocol,
      pg: ((reader) => ({ readAll: () => reader.readAll(t.memberForgetMs) }))(new PgHeartbeats(this.sql, config.schema)),
      clock,
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      heartbeatWarningMs: config.heartbeatWarningMs,
      maxGapMs: t.trackerMaxGapMs,
    });
    this.catalog = new CatalogCache(this.sql, { table: config.streamsTable, idColumn: config.streamsIdColumn }, clock, this.logger.child({ component: "catalog" }));
    this.legacy = new LegacyView({
      sql: this.sql,
      table: config.legacyHeartbeatsTable,
      timeoutMs: config.legacyHeartbeatTimeoutMs,
      totalServers: config.legacyTotalServers,
      clock,
      maxAgeMs: config.heartbeatIntervalMs,
    });
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
        this.afterChange();
        this.wakeHeartbeat.wake();
      },
      onDeclared: (capacity) => {
        this.store.setDeclaredCapacity(this.id, capacity ?? null).catch((err) => {
          // Only a restart would forget it; the heartbeat announces the capacity anyway.
          this.logger.warn({ err, category: "ERROR" }, "could not record the declared capacity");
        });
      },
    });
    this.heartbeat = new HeartbeatLoop({
      clock,
      logger: this.logger.child({ component: "heartbeat" }),
      metrics: this.metrics,
      serving: this.worker.serving,
      workerLeaseMs: config.workerLeaseMs,
      policy: config.onCoordinationLoss,
      sendRedis: (hb) => this.protocol.heartbeat(hb, this.config.heartbeatTimeoutMs),
      sendPostgres: (hb) => withTimeout(this.clock, this.pgHeartbeats.write(hb), t.heartbeatWriteTimeoutMs, "PostgreSQL heartbeat"),
      build: (now) => this.buildHeartbeat(now),
      resyncing: () => this.offerState.resyncSince !== undefined,
      requireResync: (now, why) => this.requireResync(now, why),
      onReply: (reply) => {
        this.lastReply = { at: this.clock.now(), leader: reply.leader, flag: reply.flag };
        if (this.own && reply.version > this.own.version) this.wakeOwn.wake();
      },
      onReleased: () => this.publish({ t: "ack", id: this.id }),
    });
    const lease = new RedlockLease(this.lockClients, this.keys.leader, clock);
    this.leader = new LeaderLoop({
      id: config.instanceId,
      config,
      clock,
      logger: this.logger.child({ component: "leader" }),
      protocol: this.protocol,
      tracker: this.tracker,
      store: new LeaderStore(this.sql, config.schema),
      catalog: this.catalog,
      legacy: this.legacy,
      metrics: this.metrics,
      isLeader: () => this.elector.isLeader(),
      leaseToken: () => lease.token,
      onFenced: () => void this.elector.resign(),
      onStalled: (why) => void this.elector.stepAside(t.leaderHoldOffMs, why),
      forgetHeartbeats: (ids) => this.pgHeartbeats.forget(ids),
      requireWorker: config.requireWorker,
    });
    this.elector = new Elector({
      id: config.instanceId,
      lease,
      clock,
      logger: this.logger.child({ component: "elector" }),
      ttlMs: config.leaderLeaseTtlMs,
      renewIntervalMs: t.electorRenewMs,
      retryIntervalMs: t.electorRetryMs,
      onStartedLeading: (signal) => {
        this.leaderRun = this.leader.run(signal).catch((err) => this.logger.error({ err, category: "ERROR" }, "leader loop crashed"));
      },
    });
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
    return sessionOf(this.session, this.offerState);
  }

  get mode(): Mode {
    return this.offerState.mode;
  }

  get modeExplanation(): string {
    return this.offerState.modeReason;
  }

  get ownAssignment(): OwnAssignment | undefined {
    return this.own;
  }

  /** What this agent last heard about the leader (from its own heartbeat or the tracker). */
  get leaderInfo(): LeaderInfo | undefined {
    const snap = this.tracker.latest;
    if (this.lastReply && (!snap || this.lastReply.at >= snap.at)) return this.lastReply.leader;
    return snap?.leader;
  }

  get flag(): ClusterFlag | undefined {
    const own = this.own ? { mode: this.own.mode, version: this.own.modeVersion } : undefined;
    return newerFlag(newerFlag(own, this.tracker.latest?.flag), this.lastReply?.flag);
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
  async probeDependencies(timeoutMs: number): Promise<{ postgres: Probe; redis: Probe }> {
    const [postgres, redis] = await Promise.all([probe(this.clock, () => this.opsSql`select 1`, timeoutMs), probe(this.clock, () => this.redis.ping(), timeoutMs)]);
    return { postgres, redis };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const log = this.logger.child({ category: "STARTUP" });
    // Postgres may not be up yet (compose, a restart): retry with a clear line, never crash.
    for (let attempt = 1; ; attempt++) {
      try {
        await migrate(this.sql, this.config.schema);
        await this.checkDuplicate();
        const before = await this.store.ownAssignment(this.id);
        // The worker may have outlived our previous process: it still holds those rows
        // (and its declared capacity) until it applies one of our answers.
        this.worker.inherit([...before.active.map((r) => r.id), ...before.revoking], before.declaredCapacity);
        await this.register();
        break;
      } catch (err) {
        if (err instanceof DuplicateInstanceError || this.closing.signal.aborted) throw err;
        log.warn({ err, attempt, category: "ERROR" }, "cannot reach PostgreSQL or Redis yet; retrying");
        await this.clock.sleep(Math.min(5000, 250 * attempt), this.closing.signal);
      }
    }
    log.info({ capacity: this.capacity, mode: this.mode }, "agent registered");
    this.sub = createRedis(redisTargets(this.config)[0]!, { commandTimeoutMs: 1000, subscriber: true });
    this.sub.on("message", (_channel: string, message: string) => this.onNudge(message));
    // Re-read after (re)subscribing: nudges sent while we were away are lost.
    this.sub.on("ready", () => this.wakeOwn.wake());
    void this.sub.subscribe(this.keys.channel).catch(() => {});
    const t = this.config.timings;
    this.loops.push(this.loop("heartbeat", this.config.heartbeatIntervalMs, () => this.heartbeat.beat(), this.wakeHeartbeat));
    this.loops.push(this.loop("tracker", this.config.heartbeatIntervalMs, () => this.track()));
    this.loops.push(this.loop("own", t.ownRowsReloadMs, () => this.loadOwn(), this.wakeOwn));
    this.loops.push(this.loop("catalog", this.config.catalogRefreshMs, () => this.refreshCatalog()));
    this.elector.start();
  }

  /**
   * Graceful exit, bounded by DRAIN_TIMEOUT.
   * SHUTDOWN_DRAIN=true: stop taking streams and hand off what we hold (the leader moves
   * them, or hashing peers take them), then say goodbye.
   * SHUTDOWN_DRAIN=false (a restart): withdraw the worker and exit; the rows stay ours
   * for HEARTBEAT_TIMEOUT, so the same INSTANCE_ID coming back moves nothing.
   */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    const log = this.logger.child({ category: "INSTANCE" });
    const serving = this.worker.serving;
    if (this.started && !this.leaving && !this.restarting) {
      const deadline = this.clock.now() + this.config.drainTimeoutMs;
      const pause = () => this.clock.sleep(SHUTDOWN_POLL_MS).catch(() => {});
      if (this.config.shutdownDrain) {
        this.leaving = true;
        log.info({ held: serving.held().length }, "draining before exit");
        this.wakeHeartbeat.wake();
        const leaderOk = () => !!this.leaderInfo?.ready && this.mode === "orchestrated";
        // Orchestrated: wait until the leader moved our rows away. Hashed: release at once.
        while (this.clock.now() < deadline && !this.closing.signal.aborted) {
          const rowsLeft = (this.own?.active.length ?? 0) + (this.own?.revoking.length ?? 0);
          if (!leaderOk() || rowsLeft === 0) break;
          await pause();
        }
      } else {
        this.restarting = true;
        log.info({ held: serving.held().length }, "exiting for a restart: keeping the membership, withdrawing the worker");
      }
      serving.setListed([]);
      // Wait for the worker to confirm the empty list (or for its lease to run out).
      while (this.clock.now() < deadline && serving.held().length > 0) await pause();
      await this.heartbeat.beat().catch(() => {}); // the goodbye: holding nothing
      if (this.elector.isLeader()) await this.elector.resign();
      log.info({ held: serving.held().length }, this.leaving ? "handed off; exiting" : "withdrawn; exiting");
    }
    await this.close();
  }

  /** Stops everything without handing off (tests, second signal). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    await this.elector.close().catch(() => {});
    await this.leaderRun;
    await Promise.allSettled(this.loops);
    if (this.sub) await closeRedis(this.sub);
    for (const c of this.lockClients) await closeRedis(c);
    await Promise.all([this.sql, this.opsSql, this.hbSql].map((p) => p.end({ timeout: 2 }).catch(() => {})));
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

  // ---- loops ---------------------------------------------------------------------

  private loop(name: string, everyMs: number, step: () => Promise<unknown>, waker?: Waker): Promise<void> {
    const signal = this.closing.signal;
    const log = this.logger.child({ component: name });
    const sleeper = waker ?? new Waker(this.clock, signal);
    return (async () => {
      const failure = new FailureMemo();
      while (!signal.aborted) {
        try {
          await step();
          failure.succeeded();
        } catch (err) {
          if (signal.aborted || isAbortError(err)) break;
          if (failure.failed(err)) log.warn({ err, category: "ERROR" }, `${name} step failed`);
        }
        await sleeper.sleep(everyMs);
      }
    })();
  }

  private buildHeartbeat(now: number): Heartbeat {
    return {
      id: this.id,
      seq: ++this.seq,
      ttlMs: this.config.heartbeatTimeoutMs,
      session: this.sessionNow,
      capacity: this.capacity,
      draining: this.own?.draining ?? false,
      mode: this.mode,
      useOrchestrator: this.config.useOrchestrator,
      version: this.own?.version ?? 0,
      held: this.worker.serving.held(now),
      leaving: this.leaving,
      restarting: this.restarting,
      released: [...this.worker.released],
      states: this.worker.streamStates(),
      worker: this.worker.health(now),
      pgOk: this.heartbeat.channels.postgres,
      startedAt: new Date(this.startedAtWall).toISOString(),
      host: os.hostname(),
      location: this.config.location,
      software: SOFTWARE_VERSION,
    };
  }

  private async track(): Promise<void> {
    await this.tracker.refresh();
    this.afterChange();
  }

  private async loadOwn(): Promise<void> {
    const started = this.clock.now();
    const own = await this.store.ownAssignment(this.id);
    if (!own.registered) await this.register();
    this.own = own;
    this.ownLoadedAt = started;
    this.afterChange();
  }

  private async refreshCatalog(): Promise<void> {
    const t = this.config.timings;
    // Hashing needs the catalog (and the legacy members); orchestrated agents keep a copy for a fallback.
    await this.catalog.get(this.mode === "hashed" ? t.catalogMaxAgeHashedMs : t.catalogMaxAgeOrchestratedMs);
    await this.legacy.members();
    if (this.mode === "hashed") this.afterChange();
  }

  /** Legacy members' streams, as this agent last read them (hashing leaves them alone). */
  private legacyView(snap: Snapshot | undefined): Map<string, string> | undefined {
    if (!this.catalog.current) return undefined;
    return this.legacy.owned(this.catalog.current.streams, liveIds(snap?.members.values() ?? []));
  }

  private requireResync(now: number, why: string): void {
    if (this.offerState.resyncSince === undefined) {
      this.logger.warn({ category: "INSTANCE", why }, "withdrawing every stream until the assignment and membership are re-read");
    }
    this.offerState = beginResync(this.offerState, now);
    this.worker.serving.setListed([]);
    this.worker.serving.expire();
    this.wakeOwn.wake();
  }

  /** Recomputes the mode and the offered set from the latest reads (agent/offer.ts). */
  private afterChange(): void {
    if (this.closed) return;
    const now = this.clock.now();
    const snap = this.tracker.latest;
    const serving = this.worker.serving;
    const d = decideOffer(this.offerState, {
      now,
      me: this.id,
      processSession: this.session,
      useOrchestrator: this.config.useOrchestrator,
      fallbackGraceMs: this.config.fallbackGraceMs,
      hashSettleMs: this.config.hashSettleMs,
      maxViewAgeMs: this.config.timings.maxViewAgeMs,
      heartbeatOk: this.heartbeat.healthy,
      snapshot: snap,
      own: this.own,
      ownLoadedAt: this.ownLoadedAt,
      flag: this.flag,
      leader: this.leaderInfo,
      leaving: this.leaving,
      listed: serving.streams,
      catalog: this.catalog.current?.streams,
      legacy: this.legacyView(snap),
      released: this.worker.released,
    });
    this.offerState = d.state;
    if (d.resynced) {
      this.logger.info({ category: "INSTANCE" }, "resynced; serving again after the next confirmed heartbeat");
      this.wakeHeartbeat.wake();
    }
    if (d.modeChange) {
      this.logger.info({ category: "INSTANCE", from: d.modeChange.from, to: d.modeChange.to, why: d.modeChange.why }, `mode: ${d.modeChange.to}`);
      this.wakeHeartbeat.wake();
    }
    this.worker.forgetReleased(d.forgetReleased);
    if (d.streams === undefined) return;
    const before = serving.streams.length;
    if (serving.setListed(d.streams)) {
      this.logger.debug({ category: "STREAM", before, after: d.streams.length, blocked: d.blocked }, "offer changed");
      this.wakeHeartbeat.wake();
    }
    if (this.leaving) return;
    this.metrics.streamsServed.set(serving.streams.length);
    for (const m of ["orchestrated", "hashed"] as const) this.metrics.mode.set({ mode: m }, m === this.mode ? 1 : 0);
    // Wanted streams still held elsewhere: the holder may have let go since our last read
    // of the membership (a handoff in progress). Look again now instead of at the next tick.
    if (d.blocked > 0 && snap && now - snap.at > 50) this.refreshViewSoon();
  }

  /** One extra membership read, at most every VIEW_REFRESH_MIN_MS, followed by a recomputation. */
  private refreshViewSoon(): void {
    if (this.viewRefreshPending || this.closed) return;
    this.viewRefreshPending = true;
    void this.clock
      .sleep(Math.max(0, VIEW_REFRESH_MIN_MS - (this.clock.now() - this.lastViewRefreshAt)), this.closing.signal)
      .then(() => this.tracker.refresh())
      .then(
        () => {
          this.lastViewRefreshAt = this.clock.now();
          this.viewRefreshPending = false;
          this.afterChange();
        },
        () => {
          // Redis unreachable or closing: the regular tracker loop carries on.
          this.viewRefreshPending = false;
        },
      );
  }

  private onNudge(message: string): void {
    const n = decodeNudge(message);
    if (!n) return;
    const leading = this.elector.isLeader();
    switch (n.t) {
      case "assign":
        if ((n.versions[this.id] ?? 0) > (this.own?.version ?? 0)) this.wakeOwn.wake();
        break;
      case "mode":
      case "drain":
        this.wakeOwn.wake();
        if (leading) this.leader.nudge();
        break;
      case "leader":
        void this.tracker.refresh().then(
          () => this.afterChange(),
          () => {},
        );
        this.wakeOwn.wake();
        break;
      case "ack":
        if (leading) this.leader.nudge();
        break;
      case "rebalance":
        if (leading) this.leader.requestRebalance();
        break;
    }
  }

  private async register(): Promise<void> {
    await this.store.register({ id: this.id, capacity: this.capacity, software: SOFTWARE_VERSION, location: this.config.location, host: os.hostname() });
  }

  /**
   * Refuses to start beside a live agent with the same INSTANCE_ID (its heartbeats keep
   * progressing). A crashed predecessor's key stops progressing: we take over its rows.
   */
  private async checkDuplicate(): Promise<void> {
    const t = this.config.timings;
    const { heartbeat: a, pttlMs } = await this.protocol.readHeartbeat(this.id);
    if (!a || a.session === this.session || a.leaving || a.restarting) return;
    // Silent for more than a beat and a half: the predecessor crashed; take over.
    if (this.config.heartbeatTimeoutMs - pttlMs > t.duplicateSilentMs) return;
    await this.clock.sleep(t.duplicateWatchMs);
    // Unreadable now (Redis gone): nothing proves a live twin, start.
    const b = (await this.protocol.readHeartbeat(this.id).catch(() => undefined))?.heartbeat;
    if (b && b.session === a.session && b.seq !== a.seq && !b.leaving && !b.restarting) {
      throw new DuplicateInstanceError(`Another agent with INSTANCE_ID=${this.id} is alive (heartbeating from ${b.host}); refusing to start a second one.`);
    }
  }
}
