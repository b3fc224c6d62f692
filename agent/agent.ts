/**
 * One agent: the sidecar beside one fingerv7 worker. Every node runs the same thing;
 * the one holding the lease also runs the leader loop.
 *
 * Components, started in this order and closed in reverse:
 *   Postgres (migrate, register) → Redis → tracker → heartbeat → own-rows loader →
 *   subscriber → elector (→ leader loop while leading) → HTTP (main.ts).
 *
 * Safety rules this file enforces (see agent/serving.ts for the worker half):
 * - the worker's lease is renewed only from confirmed heartbeats (or, under
 *   ON_COORDINATION_LOSS=keep, from attempts made while Redis is unreachable);
 * - when the lease has lapsed (a freeze, a long outage), everything is withdrawn and
 *   nothing is offered again until the rows AND the membership view were re-read after
 *   the lapse;
 * - a stream is never offered while another live member reports holding it.
 */
import crypto from "node:crypto";
import os from "node:os";
import type { Redis } from "ioredis";
import { CatalogCache } from "../shared/catalog-cache.js";
import type { Clock } from "../shared/clock.js";
import { isAbortError } from "../shared/clock.js";
import type { Config } from "../shared/config.js";
import { connect, type Sql } from "../shared/db.js";
import { HEARTBEAT_LUA, PUBLISH_MODE_LUA } from "../shared/heartbeat-script.js";
import { Keys } from "../shared/keys.js";
import { LegacyView } from "../shared/legacy.js";
import type { Logger } from "../shared/logger.js";
import { liveIds } from "../shared/member-state.js";
import { MembershipTracker, type ClusterFlag, type Snapshot } from "../shared/membership.js";
import { Metrics } from "../shared/metrics.js";
import { closeRedis, createRedis } from "../shared/redis.js";
import { migrate } from "../shared/schema.js";
import { Store, type OwnAssignment } from "../shared/store.js";
import { SOFTWARE_VERSION, type Heartbeat, type LeaderInfo, type Mode, type Nudge } from "../shared/types.js";
import { Elector } from "../leader/elector.js";
import { RedlockLease } from "../leader/lease.js";
import { LeaderLoop } from "../leader/leader.js";
import { LeaderStore } from "../leader/store.js";
import type { Plan } from "../shared/placement/plan.js";
import { newerFlag, resolveMode } from "./mode.js";
import { reconcile } from "./reconcile.js";
import { Serving } from "./serving.js";

export interface AgentDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
}

export class DuplicateInstanceError extends Error {
  override readonly name = "DuplicateInstanceError";
}

interface WorkerStats {
  processed: number;
  errors: number;
  lastReportAt: number | undefined;
  streams: Map<string, { status: string; error?: string; at: number }>;
  kind: "v1" | "legacy" | "none";
  capacityOverride: number | undefined;
}

export class Agent {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly keys: Keys;
  readonly metrics: Metrics;
  readonly serving: Serving;
  readonly sql: Sql;
  readonly opsSql: Sql;
  readonly redis: Redis;
  readonly store: Store;
  readonly tracker: MembershipTracker;
  readonly catalog: CatalogCache;
  readonly legacy: LegacyView;
  readonly elector: Elector;
  readonly leader: LeaderLoop;
  readonly session = crypto.randomUUID();
  readonly startedAtWall: number;
  private readonly startedAt: number;

  private sub: Redis | undefined;
  private lockClients: Redis[] = [];
  private readonly closing = new AbortController();
  private loops: Promise<void>[] = [];
  private seq = 0;
  private own: OwnAssignment | undefined;
  private ownLoadedAt = -Infinity;
  private modeNow: Mode = "orchestrated";
  private modeReason = "starting";
  /**
   * Rows are trusted only once written after this gate: the version seen at our first
   * read, or when we last switched to hashing. Until the current leader has rewritten them
   * (having seen our new session or our return, and what everyone holds), they may be a
   * stale copy that hashing peers have moved past.
   */
  private rowsGate: number | undefined;
  private rowsTrusted = false;
  private resyncs = 0;
  private lastLeaderSeenAt: number;
  private lastReply: { at: number; leader: LeaderInfo | undefined; flag: ClusterFlag | undefined; version: number } | undefined;
  private resyncSince: number | undefined;
  private lastAttemptAt: number | undefined;
  private lastConfirmedAt: number | undefined;
  private heartbeatOk = false;
  private lastReportedHeld: readonly string[] = [];
  private lastHeartbeatError: string | undefined;
  private wakeHeartbeat: (() => void) | undefined;
  private wakeOwn: (() => void) | undefined;
  private leaving = false;
  private restarting = false;
  /** Streams the worker gave up; forgotten once they are no longer ours. */
  private readonly released = new Set<string>();
  private viewRefreshPending = false;
  private lastViewRefreshAt = -Infinity;
  private leaderRun: Promise<void> | undefined;
  private closed = false;
  private started = false;
  readonly worker: WorkerStats = { processed: 0, errors: 0, lastReportAt: undefined, streams: new Map(), kind: "none", capacityOverride: undefined };

  constructor(deps: AgentDeps) {
    const { config, clock } = deps;
    this.config = config;
    this.clock = clock;
    this.logger = deps.logger.child({ instance: config.instanceId });
    this.keys = new Keys(config.redisKeyPrefix);
    this.metrics = new Metrics({ instance: config.instanceId });
    this.serving = new Serving(clock, config.workerLeaseMs, config.workerTimeoutMs);
    this.startedAtWall = clock.wall();
    this.startedAt = clock.now();
    this.lastLeaderSeenAt = clock.now();
    this.sql = connect(config.databaseUrl, { max: 4, connectTimeout: Math.max(1, Math.ceil(config.heartbeatTimeoutMs / 1000)) });
    // Operator reads and health probes get their own small pool: a burst of /health or
    // /status calls while PostgreSQL is away must never queue in front of the leader's
    // epoch bump or the agent's own assignment reads.
    this.opsSql = connect(config.databaseUrl, { max: 2, connectTimeout: 2 });
    const commandTimeoutMs = Math.max(200, Math.min(1000, Math.round(config.heartbeatIntervalMs * 0.8)));
    this.redis = createRedis(config.redisUrls[0]!, { commandTimeoutMs });
    this.lockClients = [this.redis, ...config.redisUrls.slice(1).map((u) => createRedis(u, { commandTimeoutMs }))];
    this.store = new Store(this.sql, config.schema);
    this.tracker = new MembershipTracker({
      redis: this.redis,
      keys: this.keys,
      clock,
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      heartbeatWarningMs: config.heartbeatWarningMs,
      maxGapMs: Math.max(2 * config.heartbeatIntervalMs, config.heartbeatIntervalMs + 1000),
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
    const lease = new RedlockLease(this.lockClients, this.keys.leader);
    this.leader = new LeaderLoop({
      id: config.instanceId,
      config,
      clock,
      logger: this.logger.child({ component: "leader" }),
      redis: this.redis,
      keys: this.keys,
      tracker: this.tracker,
      store: new LeaderStore(this.sql, config.schema),
      catalog: this.catalog,
      legacy: this.legacy,
      metrics: this.metrics,
      isLeader: () => this.elector.isLeader(),
      leaseToken: () => lease.token,
      onFenced: () => void this.elector.resign(),
      requireWorker: config.requireWorker,
    });
    this.elector = new Elector({
      id: config.instanceId,
      lease,
      clock,
      logger: this.logger.child({ component: "elector" }),
      ttlMs: config.leaderLeaseTtlMs,
      renewIntervalMs: Math.max(50, Math.round(config.leaderLeaseTtlMs / 5)),
      retryIntervalMs: Math.max(50, Math.round(config.heartbeatIntervalMs / 2)),
      onStartedLeading: (signal) => {
        this.leaderRun = this.leader.run(signal).catch((err) => this.logger.error({ err, category: "ERROR" }, "leader loop crashed"));
      },
    });
  }

  get id(): string {
    return this.config.instanceId;
  }

  /** This process's session, with the resync generation: what the leader stamps rows for. */
  get sessionNow(): string {
    return this.resyncs === 0 ? this.session : `${this.session}.${this.resyncs}`;
  }

  get mode(): Mode {
    return this.modeNow;
  }

  get modeExplanation(): string {
    return this.modeReason;
  }

  get ownAssignment(): OwnAssignment | undefined {
    return this.own;
  }

  get isLeaving(): boolean {
    return this.leaving;
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
    return this.heartbeatOk;
  }

  get heartbeatError(): string | undefined {
    return this.lastHeartbeatError;
  }

  /** Capacity announced to the cluster: a legacy worker's declared capacity wins while it is alive. */
  get capacity(): number {
    const declared = this.worker.capacityOverride;
    return declared !== undefined && this.workerHealth().ok ? declared : this.config.maxStreams;
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
        await this.register();
        break;
      } catch (err) {
        if (err instanceof DuplicateInstanceError || this.closing.signal.aborted) throw err;
        log.warn({ err, attempt, category: "ERROR" }, "cannot reach PostgreSQL or Redis yet; retrying");
        await this.clock.sleep(Math.min(5000, 250 * attempt), this.closing.signal);
      }
    }
    log.info({ capacity: this.capacity, mode: this.modeNow }, "agent registered");
    this.sub = createRedis(this.config.redisUrls[0]!, { commandTimeoutMs: 1000, subscriber: true });
    this.sub.on("message", (_channel: string, message: string) => this.onNudge(message));
    this.sub.on("ready", () => {
      // Re-read after (re)subscribing: nudges sent while we were away are lost.
      this.wakeOwn?.();
    });
    void this.sub.subscribe(this.keys.channel).catch(() => {});
    this.loops.push(this.loop("heartbeat", this.config.heartbeatIntervalMs, () => this.beat(), (w) => (this.wakeHeartbeat = w)));
    this.loops.push(this.loop("tracker", this.config.heartbeatIntervalMs, () => this.track()));
    this.loops.push(this.loop("own", Math.min(this.config.catalogRefreshMs, 5000), () => this.loadOwn(), (w) => (this.wakeOwn = w)));
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
    if (this.started && !this.leaving && !this.restarting) {
      const deadline = this.clock.now() + this.config.drainTimeoutMs;
      if (this.config.shutdownDrain) {
        this.leaving = true;
        log.info({ held: this.serving.held().length }, "draining before exit");
        this.wakeHeartbeat?.();
        const leaderOk = () => !!this.leaderInfo?.ready && this.modeNow === "orchestrated";
        // Orchestrated: wait until the leader moved our rows away. Hashed: release at once.
        while (this.clock.now() < deadline && !this.closing.signal.aborted) {
          const rowsLeft = (this.own?.active.length ?? 0) + (this.own?.revoking.length ?? 0);
          if (!leaderOk() || rowsLeft === 0) break;
          await this.clock.sleep(50).catch(() => {});
        }
      } else {
        this.restarting = true;
        log.info({ held: this.serving.held().length }, "exiting for a restart: keeping the membership, withdrawing the worker");
      }
      this.serving.setListed([]);
      // Wait for the worker to confirm the empty list (or for its lease to run out).
      while (this.clock.now() < deadline && this.serving.held().length > 0) {
        await this.clock.sleep(50).catch(() => {});
      }
      await this.beat().catch(() => {}); // the goodbye: holding nothing
      if (this.elector.isLeader()) await this.elector.resign();
      log.info({ held: this.serving.held().length }, this.leaving ? "handed off; exiting" : "withdrawn; exiting");
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
    await Promise.all([this.sql.end({ timeout: 2 }).catch(() => {}), this.opsSql.end({ timeout: 2 }).catch(() => {})]);
  }

  /** Called by the HTTP layer whenever the worker reports. */
  noteReport(r: { processed?: number; errors?: number; streams?: readonly { id: string; status: string; error?: string }[] }, kind: "v1" | "legacy"): void {
    const now = this.clock.now();
    this.worker.kind = kind;
    this.worker.lastReportAt = now;
    if (r.processed !== undefined) this.worker.processed = r.processed;
    if (r.errors !== undefined) this.worker.errors = r.errors;
    for (const s of r.streams ?? []) this.worker.streams.set(s.id, { status: s.status, error: s.error, at: now });
    this.metrics.workerReports.inc();
    this.metrics.workerProcessed.set(this.worker.processed);
    this.metrics.workerErrors.set(this.worker.errors);
  }

  /**
   * The worker gave streams up (legacy POST /streams/release): stop offering them, tell
   * the leader in the next heartbeat (sent now) so it moves them at once. Returns the ids
   * that were ours.
   */
  releaseStreams(ids: readonly string[]): string[] {
    const mine = new Set(this.serving.streams.map((s) => s.id));
    const released = ids.filter((id) => mine.has(id) || this.own?.active.some((r) => r.id === id));
    for (const id of released) this.released.add(id);
    this.serving.released(released);
    this.afterChange();
    this.wakeHeartbeat?.();
    return released;
  }

  /** The worker's last report per stream it serves now (bounded: only streams we offer). */
  private streamStates(): Record<string, { s: string; e?: string }> | undefined {
    if (this.worker.streams.size === 0) return undefined;
    const out: Record<string, { s: string; e?: string }> = {};
    const offered = new Set(this.serving.streams.map((x) => x.id));
    for (const [id, st] of this.worker.streams) {
      if (!offered.has(id)) {
        this.worker.streams.delete(id); // no longer ours: forget what was said about it
        continue;
      }
      out[id] = st.error ? { s: st.status, e: st.error.slice(0, 200) } : { s: st.status };
    }
    return out;
  }

  /** The held set shrank (the worker confirmed a version): tell the leader now, not at the next beat. */
  afterFetch(heldBefore: number): void {
    if (this.serving.held().length < heldBefore) {
      this.wakeHeartbeat?.();
    }
  }

  workerHealth(now = this.clock.now()): Heartbeat["worker"] {
    const fetched = this.serving.workerSilentMs(now);
    const reported = this.worker.lastReportAt === undefined ? undefined : now - this.worker.lastReportAt;
    const silent = fetched === undefined ? reported : reported === undefined ? fetched : Math.min(fetched, reported);
    // A worker that has not called yet is given WORKER_TIMEOUT from our start to appear,
    // so a restarted agent keeps its streams while its worker reconnects.
    const starting = silent === undefined && now - this.startedAt <= this.config.workerTimeoutMs;
    return {
      ok: starting || (silent !== undefined && silent <= this.config.workerTimeoutMs),
      lastSeenMsAgo: silent === undefined ? null : Math.round(silent),
      processed: this.worker.processed,
      errors: this.worker.errors,
      kind: this.worker.kind,
    };
  }

  // ---- loops ---------------------------------------------------------------------

  private loop(name: string, everyMs: number, step: () => Promise<unknown>, setWake?: (w: () => void) => void): Promise<void> {
    const signal = this.closing.signal;
    const log = this.logger.child({ component: name });
    return (async () => {
      let lastError: string | undefined;
      while (!signal.aborted) {
        try {
          await step();
          lastError = undefined;
        } catch (err) {
          if (signal.aborted || isAbortError(err)) break;
          const msg = err instanceof Error ? err.message : String(err);
          if (msg !== lastError) log.warn({ err, category: "ERROR" }, `${name} step failed`);
          lastError = msg;
        }
        const ctl = new AbortController();
        const onAbort = () => ctl.abort();
        signal.addEventListener("abort", onAbort, { once: true });
        setWake?.(() => ctl.abort());
        await this.clock.sleep(everyMs, ctl.signal).catch(() => {});
        signal.removeEventListener("abort", onAbort);
      }
    })();
  }

  private async beat(): Promise<void> {
    const sentAt = this.clock.now();
    // A gap longer than the lease between two attempts means this process was frozen
    // (SIGSTOP, a stalled VM) or starved: our view is stale, withdraw and resync.
    if (this.lastAttemptAt !== undefined && sentAt - this.lastAttemptAt > this.config.workerLeaseMs) {
      this.requireResync(sentAt, "heartbeat gap longer than the worker lease");
    }
    if (this.serving.leaseDeadline > 0 && !this.serving.leaseValid(sentAt) && this.resyncSince === undefined) {
      // The worker has stopped (its lease ran out) and while we could not renew, the
      // leader may have declared us dead and moved our streams: re-read before serving.
      this.requireResync(sentAt, "worker lease lapsed");
    }
    this.lastAttemptAt = sentAt;
    const hb = this.heartbeat(sentAt);
    try {
      const reply = (await this.redis.eval(
        HEARTBEAT_LUA,
        0,
        this.keys.prefix,
        this.id,
        JSON.stringify(hb),
        String(this.config.heartbeatTimeoutMs),
        crypto.randomUUID(),
      )) as [number, string, string, string, string];
      const [, version, modeRaw, , leaderRaw] = reply;
      this.lastReply = { at: this.clock.now(), leader: parse<LeaderInfo>(leaderRaw), flag: parse<ClusterFlag>(modeRaw), version: Number(version) || 0 };
      this.lastConfirmedAt = sentAt;
      this.heartbeatOk = true;
      this.lastHeartbeatError = undefined;
      this.metrics.heartbeats.inc({ result: "ok" });
      // Released something since the last beat: the leader may be waiting on it.
      if (this.lastReportedHeld.some((id) => !hb.held.includes(id))) this.publish({ t: "ack", id: this.id });
      this.lastReportedHeld = hb.held;
      if (this.resyncSince === undefined) this.serving.renew(sentAt);
      if (this.own && this.lastReply.version > this.own.version) this.wakeOwn?.();
    } catch (err) {
      this.heartbeatOk = false;
      this.metrics.heartbeats.inc({ result: "failed" });
      const msg = err instanceof Error ? err.message : String(err);
      if (msg !== this.lastHeartbeatError) this.logger.warn({ err, category: "ERROR", policy: this.config.onCoordinationLoss }, "heartbeat failed");
      this.lastHeartbeatError = msg;
      // ON_COORDINATION_LOSS=keep: keep the worker going on its last assignment while
      // Redis is unreachable (no audio lost; a partial partition can duplicate work).
      // Only for a Redis that is clearly down (refused, closed, the client reconnecting):
      // a command that timed out on a connection still up may mean this process is
      // starved or the network drops packets while the leader still reaches Redis and will
      // move our streams, so that never renews.
      const timedOutOnLiveConnection = /timed? ?out/i.test(msg) && this.redis.status === "ready";
      if (this.config.onCoordinationLoss === "keep" && this.resyncSince === undefined && !timedOutOnLiveConnection) this.serving.renew(sentAt);
    }
    this.metrics.leaseRemaining.set(Math.max(0, this.serving.leaseDeadline - this.clock.now()) / 1000);
    this.metrics.streamsHeld.set(hb.held.length);
  }

  private heartbeat(now: number): Heartbeat {
    return {
      id: this.id,
      seq: ++this.seq,
      ttlMs: this.config.heartbeatTimeoutMs,
      session: this.sessionNow,
      capacity: this.capacity,
      draining: this.own?.draining ?? false,
      mode: this.modeNow,
      useOrchestrator: this.config.useOrchestrator,
      version: this.own?.version ?? 0,
      held: this.serving.held(now),
      leaving: this.leaving,
      restarting: this.restarting,
      released: [...this.released],
      states: this.streamStates(),
      worker: this.workerHealth(now),
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
    // Hashing needs the catalog (and the legacy members); orchestrated agents keep a copy for a fallback.
    await this.catalog.get(this.modeNow === "hashed" ? this.config.catalogRefreshMs : 6 * this.config.catalogRefreshMs);
    await this.legacy.members();
    if (this.modeNow === "hashed") this.afterChange();
  }

  /** Legacy members' streams, as this agent last read them (hashing leaves them alone). */
  private legacyView(snap: Snapshot | undefined): Map<string, string> | undefined {
    if (!this.catalog.current) return undefined;
    return this.legacy.owned(this.catalog.current.streams, liveIds(snap?.members.values() ?? []));
  }

  private requireResync(now: number, why: string): void {
    if (this.resyncSince === undefined) {
      this.logger.warn({ category: "INSTANCE", why }, "withdrawing every stream until the assignment and membership are re-read");
    }
    if (this.resyncSince === undefined) this.resyncs++;
    this.resyncSince = now;
    // Trust rows again only once the leader has rewritten them for our new generation.
    this.rowsTrusted = false;
    this.serving.setListed([]);
    this.serving.expire();
    this.wakeOwn?.();
  }

  /** Recomputes the mode and the offered set from the latest reads. */
  private afterChange(): void {
    if (this.closed) return;
    const now = this.clock.now();
    const snap = this.tracker.latest;
    if (this.resyncSince !== undefined) {
      if (this.ownLoadedAt > this.resyncSince && snap && snap.at > this.resyncSince) {
        this.resyncSince = undefined;
        this.logger.info({ category: "INSTANCE" }, "resynced; serving again after the next confirmed heartbeat");
        this.wakeHeartbeat?.();
      } else {
        return;
      }
    }
    const coordinationOk = this.heartbeatOk && !!snap && now - snap.at <= 3 * this.config.heartbeatIntervalMs;
    if (!coordinationOk) this.lastLeaderSeenAt = now; // cannot tell "no leader" from "cannot see it"
    const decision = resolveMode({
      coordinationOk,
      now,
      current: this.modeNow,
      useOrchestrator: this.config.useOrchestrator,
      flag: this.flag,
      leader: this.leaderInfo,
      lastLeaderSeenAt: this.lastLeaderSeenAt,
      fallbackGraceMs: this.config.fallbackGraceMs,
      own: this.own,
      versionAtHashed: this.rowsGate ?? Number.MAX_SAFE_INTEGER,
    });
    if (decision.leaderSeen) this.lastLeaderSeenAt = now;
    if (decision.mode !== this.modeNow) {
      this.logger.info({ category: "INSTANCE", from: this.modeNow, to: decision.mode, why: decision.reason }, `mode: ${decision.mode}`);
      if (decision.mode === "hashed") {
        this.rowsGate = this.own?.version ?? 0;
        this.rowsTrusted = false;
      }
      this.modeNow = decision.mode;
      this.wakeHeartbeat?.();
    }
    this.modeReason = decision.reason;
    const leader = this.leaderInfo;
    // While hashing for a reason that still holds, rows written now are not an invitation
    // back: only a version written after the leader saw us want orchestration counts.
    if (this.modeNow === "hashed" && !(this.flag?.mode !== "hashed" && this.config.useOrchestrator && leader?.ready)) {
      this.rowsGate = this.own?.version ?? 0;
    }
    if (this.own && this.rowsGate === undefined) this.rowsGate = this.own.version;
    // Rows are ours to serve once a leader wrote them for THIS session (process and resync
    // generation): it had then seen us come back and what everybody holds.
    if (!this.rowsTrusted && this.own?.stampedSession === this.sessionNow) this.rowsTrusted = true;
    if (this.leaving) {
      if (this.modeNow === "hashed") this.serving.setListed([]);
      else this.serving.setListed(this.serving.streams.filter((s) => this.own?.active.some((r) => r.id === s.id)));
      return;
    }
    // Forget releases the leader has acted on (the stream is no longer in our rows). A row
    // still revoking from us is not done: forgetting now would let the leader give it back.
    for (const id of this.released) if (!this.own?.active.some((r) => r.id === id) && !this.own?.revoking.includes(id)) this.released.delete(id);
    const next = reconcile({
      me: this.id,
      now,
      mode: this.modeNow,
      listed: this.serving.streams,
      rows: this.rowsTrusted ? this.own?.active : undefined,
      catalog: this.catalog.current?.streams,
      // A hashing agent that only waits for a ready leader to take it back takes nothing
      // new: the leader is placing free streams already, and two deciders would race.
      takeNew: this.modeNow !== "hashed" || !leader?.ready || this.flag?.mode === "hashed" || !this.config.useOrchestrator,
      legacy: this.legacyView(snap),
      snapshot: snap,
      hashSettleMs: this.config.hashSettleMs,
      maxViewAgeMs: 3 * this.config.heartbeatIntervalMs,
    });
    const before = this.serving.streams.length;
    const offered = this.released.size > 0 ? next.streams.filter((s) => !this.released.has(s.id)) : next.streams;
    if (this.serving.setListed(offered)) {
      this.logger.debug({ category: "STREAM", before, after: next.streams.length, blocked: next.blocked.length }, "offer changed");
      this.wakeHeartbeat?.();
    }
    this.metrics.streamsServed.set(this.serving.streams.length);
    for (const m of ["orchestrated", "hashed"] as const) this.metrics.mode.set({ mode: m }, m === this.modeNow ? 1 : 0);
    // Wanted streams still held elsewhere: the holder may have let go since our last read
    // of the membership (a handoff in progress). Look again now instead of at the next tick.
    if (next.blocked.length > 0 && snap && now - snap.at > 50) this.refreshViewSoon();
  }

  /** One extra membership read, at most every 100 ms, followed by a recomputation. */
  private refreshViewSoon(): void {
    if (this.viewRefreshPending || this.closed) return;
    this.viewRefreshPending = true;
    void this.clock
      .sleep(Math.max(0, 100 - (this.clock.now() - this.lastViewRefreshAt)), this.closing.signal)
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
    const n = parse<Nudge>(message);
    if (!n) return;
    switch (n.t) {
      case "assign":
        if ((n.versions[this.id] ?? 0) > (this.own?.version ?? 0)) this.wakeOwn?.();
        break;
      case "mode":
      case "drain":
        this.wakeOwn?.();
        if (this.elector.isLeader()) this.leader.nudge();
        break;
      case "leader":
        void this.tracker.refresh().then(() => this.afterChange(), () => {});
        this.wakeOwn?.();
        break;
      case "ack":
      case "member":
        if (this.elector.isLeader()) this.leader.nudge();
        break;
      case "rebalance":
        if (this.elector.isLeader()) this.leader.requestRebalance();
        break;
    }
  }

  // ---- operator actions (any agent answers for the whole cluster) --------------------

  /** Flips the cluster flag (Postgres is the record; Redis mirror and a nudge make it fast). */
  async setMode(mode: Mode, by: string): Promise<{ mode: Mode; version: number; changed: boolean }> {
    const r = await this.store.setMode(mode, by);
    await this.redis.eval(PUBLISH_MODE_LUA, 0, this.keys.prefix, JSON.stringify({ mode: r.mode, version: r.version })).catch(() => {
      // The leader re-publishes the flag from Postgres on every tick.
    });
    this.publish({ t: "mode", mode: r.mode });
    this.logger.info({ category: "INSTANCE", mode: r.mode, by, changed: r.changed }, `cluster mode set to ${r.mode}`);
    return r;
  }

  /** Operator drain/undrain of any instance. False for an unknown instance. */
  async setDraining(id: string, draining: boolean): Promise<boolean> {
    const ok = await this.store.setDraining(id, draining);
    if (ok) {
      this.publish({ t: "drain", id });
      this.logger.info({ category: "INSTANCE", target: id, draining }, draining ? `drain requested for ${id}` : `undrain requested for ${id}`);
    }
    return ok;
  }

  /** Asks the leader (wherever it runs) to rebalance to the targets now. */
  requestRebalance(): void {
    if (this.elector.isLeader()) this.leader.requestRebalance();
    else this.publish({ t: "rebalance" });
  }

  /**
   * What the leader would do right now if asked to rebalance: computed from the shared
   * state (Redis membership, Postgres rows, the catalog) on this agent, changing nothing.
   */
  async dryRunRebalance(): Promise<Plan> {
    return this.leader.dryRun(this.leaderInfo?.epoch ?? 0);
  }

  /** Publishes a nudge (best effort). */
  publish(n: Nudge): void {
    this.redis.publish(this.keys.channel, JSON.stringify(n)).catch(() => {});
  }

  private async register(): Promise<void> {
    await this.store.register({ id: this.id, capacity: this.capacity, software: SOFTWARE_VERSION, location: this.config.location, host: os.hostname() });
  }

  /**
   * Refuses to start beside a live agent with the same INSTANCE_ID (its heartbeats keep
   * progressing). A crashed predecessor's key stops progressing: we take over its rows.
   */
  private async checkDuplicate(): Promise<void> {
    const key = this.keys.heartbeat(this.id);
    const [[, raw], [, pttl]] = (await this.redis.multi().get(key).pttl(key).exec()) as [[unknown, string | null], [unknown, number]];
    const a = parse<Heartbeat>(raw);
    if (!a || a.session === this.session || a.leaving || a.restarting) return;
    // Silent for more than a beat and a half: the predecessor crashed; take over.
    if (this.config.heartbeatTimeoutMs - pttl > 1.5 * this.config.heartbeatIntervalMs) return;
    await this.clock.sleep(Math.round(this.config.heartbeatIntervalMs * 2.5));
    const b = parse<Heartbeat>((await this.redis.get(key).catch(() => null)) ?? "");
    if (b && b.session === a.session && b.seq !== a.seq && !b.leaving && !b.restarting) {
      throw new DuplicateInstanceError(`Another agent with INSTANCE_ID=${this.id} is alive (heartbeating from ${b.host}); refusing to start a second one.`);
    }
  }
}

function parse<T>(raw: string | null | undefined): T | undefined {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return undefined;
  }
}
