/**
 * The leader loop: runs only while this agent holds the lease, and starts nothing more
 * the moment the AbortSignal says leadership is gone; run() returns once the step then in
 * flight has ended (waited for at most LEADER_LEASE_TTL) and its health figures with it.
 *
 * Per tick: read the members (Redis), then the rows, instances and stream health
 * (Postgres, at once; the rows from ./store.ts's mirror of this term's own writes), the
 * catalog and the legacy members (cached), as ./inputs.ts does for the dry run too; plan
 * (pure; a steady tick reuses its last quiet plan when nothing it reads changed: ./memo.ts);
 * write the difference in ONE fenced transaction; publish the new versions and nudge the
 * agents. A deposed leader's transaction fails on the epoch.
 *
 * Beside this file: ./stall.ts decides when a leader that cannot complete its ticks
 * steps aside; ./accounting.ts turns each plan into event rows, metrics and log lines;
 * ./publishing.ts writes the leader info, versions, flag mirror and nudges to Redis;
 * ./housekeeping.ts saves the members' stats and prunes gone members and old events.
 */
import type { CatalogCache } from "../shared/catalog-cache.js";
import type { Clock } from "../shared/clock.js";
import { cancel, isAbortError } from "../shared/clock.js";
import type { Config } from "../shared/config.js";
import type { Logger } from "../shared/logger.js";
import type { LegacyView } from "../shared/legacy.js";
import type { MembershipTracker, Snapshot } from "../shared/membership.js";
import type { Metrics } from "../shared/metrics.js";
import { plan, type Plan } from "../shared/placement/plan.js";
import type { RedisProtocol } from "../shared/redis-protocol.js";
import type { StreamId } from "../shared/types.js";
import { LeaderAccounting } from "./accounting.js";
import { PlanMemo, RowsSummaries } from "./memo.js";
import { buildPlanInput, readPlanSources, rebalancePolicy, rebalanceTrigger, type PlanSources } from "./inputs.js";
import { StallWatch } from "./stall.js";
import { LeaderPublisher } from "./publishing.js";
import { LeaderHousekeeping } from "./housekeeping.js";
import { LeaderHealth } from "./health.js";
import type { StreamHealthStore } from "../shared/stream-health-store.js";
import { EpochMovedError, FencedOutError, type LeaderStore } from "./store.js";

/** How long an agent asked for a dry run keeps reading the whole membership. */
const DRY_RUN_WHOLE_MS = 60_000;

export interface LeaderDeps {
  readonly id: string;
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly protocol: RedisProtocol;
  readonly tracker: MembershipTracker;
  readonly store: LeaderStore;
  readonly catalog: CatalogCache;
  /** Legacy members (LEGACY_TOTAL_SERVERS), cached: shared with the agent's other readers. */
  readonly legacy: LegacyView;
  readonly metrics: Metrics;
  /** The elector's view: false as soon as the lease may be gone. */
  readonly isLeader: () => boolean;
  readonly leaseToken: () => string | undefined;
  /** Called when Postgres says another leader has a newer epoch. */
  readonly onFenced: () => void;
  /** Called when this leader could not complete its work in time while others could: step aside. */
  readonly onStalled: (why: string) => void;
  /** Deletes the PostgreSQL heartbeats of members forgotten for good. */
  readonly forgetHeartbeats: (ids: readonly string[]) => Promise<void>;
  readonly requireWorker: boolean;
  /** Stream health in PostgreSQL (read per tick, written fenced: ./health.ts). */
  readonly health: StreamHealthStore;
}

export interface LeaderStatus {
  readonly epoch: number | undefined;
  readonly ready: boolean;
  readonly lastTickAt: number | undefined;
  readonly lastError: string | undefined;
  readonly lastRebalance: { readonly at: string; readonly reason: string; readonly moved: number } | undefined;
  readonly unassigned: readonly StreamId[];
  readonly waiting: number;
  readonly lastPlan: { readonly moves: number; readonly byReason: Record<string, number> } | undefined;
}

export class LeaderLoop {
  private epoch: number | undefined;
  private wake: (() => void) | undefined;
  private pending = false;
  private lastRebalanceAt = -Infinity;
  private lastPool = new Map<string, number>();
  /** Member → the session whose rows this term has written (see plan's `stamped`). */
  private stamped = new Map<string, string>();
  private lastFailureAt = -Infinity;
  private st: {
    lastTickAt?: number;
    lastError?: string;
    lastRebalance?: LeaderStatus["lastRebalance"];
  } = {};
  private readonly accounting: LeaderAccounting;
  private readonly stall: StallWatch;
  private readonly publisher: LeaderPublisher;
  private readonly housekeeping: LeaderHousekeeping;
  private readonly streamHealth: LeaderHealth;
  /** Set by POST /rebalance: the next tick rebalances whatever the imbalance. */
  private forceNext = false;
  /** `epoch/incarnation` last recorded as the deciders' Redis (written again in a new term). */
  private recordedRedis = "";
  /** A steady tick reuses its last quiet plan and its rows summary (./memo.ts). */
  readonly memo = new PlanMemo();
  private readonly rowsSummaries = new RowsSummaries();

  constructor(private readonly d: LeaderDeps) {
    this.publisher = new LeaderPublisher({ id: d.id, clock: d.clock, protocol: d.protocol, config: d.config, isLeader: () => d.isLeader(), leaseToken: () => d.leaseToken(), epoch: () => this.epoch });
    this.housekeeping = new LeaderHousekeeping(d);
    this.accounting = new LeaderAccounting({ clock: d.clock, logger: d.logger, metrics: d.metrics });
    this.streamHealth = new LeaderHealth({
      clock: d.clock,
      logger: d.logger,
      metrics: d.metrics,
      settings: d.config.streamHealth,
      store: d.health,
      fence: d.store,
      figuresEveryMs: d.config.timings.statsSaveMs,
    });
    this.stall = new StallWatch({
      id: d.id,
      clock: d.clock,
      logger: d.logger,
      stallMs: d.config.timings.leaderStallMs,
      membership: () => d.tracker.latest,
      lastError: () => this.st.lastError,
      onStalled: d.onStalled,
    });
  }

  get status(): LeaderStatus {
    return {
      epoch: this.epoch,
      ready: this.epoch !== undefined,
      lastTickAt: this.st.lastTickAt,
      lastError: this.st.lastError,
      lastRebalance: this.st.lastRebalance,
      unassigned: this.accounting.unassigned,
      waiting: this.accounting.waiting,
      lastPlan: this.accounting.lastPlan,
    };
  }

  /** Asks for a tick as soon as possible (an ack, a join, a drain). */
  nudge(): void {
    this.pending = true;
    this.wake?.();
  }

  requestRebalance(): void {
    this.forceNext = true;
    this.nudge();
  }

  async run(signal: AbortSignal): Promise<void> {
    // A new term: a new epoch must be won; nothing observed in an earlier term carries over.
    this.epoch = undefined;
    this.stamped = new Map();
    this.lastPool = new Map();
    this.accounting.newTerm();
    this.streamHealth.newTerm();
    this.memo.clear();
    this.rowsSummaries.clear();
    this.forceNext = false;
    const tickEvery = this.d.config.timings.leaderTickMs;
    // The leader info must stay fresh even while a tick waits on a slow or dead
    // PostgreSQL, or every agent would conclude there is no leader and fall back.
    const infoKept = this.publisher.whileLeading(signal);
    // Progress = a completed stage of a tick (or the epoch won). A leader without progress
    // for leaderStallMs while other members reach PostgreSQL steps aside (./stall.ts).
    this.stall.progressed();
    let inflight: Promise<unknown> = Promise.resolve();
    while (!signal.aborted) {
      inflight = this.step(signal);
      const outcome = await this.stall.await(inflight, signal);
      if (outcome === "stalled" || outcome === "fenced") break;
      if (signal.aborted) break;
      if (this.stall.stepAsideIfStalled()) break;
      await this.waitForWork(tickEvery, signal);
    }
    await infoKept;
    this.d.metrics.isLeader.set(0);
    // Followers try the lease only when no leader is named: stop naming this one now,
    // before waiting for anything below.
    await this.publisher.clear();
    // A step the end of leadership cut short may still run (its bookkeeping starts the
    // health figures): let it finish, within the stall limit (a hung PostgreSQL never
    // answers), so nothing of this term still uses the stores once run() returns.
    await this.settle(inflight, this.d.config.timings.leaderStallMs);
    await this.streamHealth.idle();
  }

  /** Waits for `work` to end, at most `ms`. */
  private async settle(work: Promise<unknown>, ms: number): Promise<void> {
    const timer = new AbortController();
    await Promise.race([work.catch(() => {}), this.d.clock.sleep(ms, timer.signal).catch(() => {})]);
    cancel(timer);
  }

  /** One unit of leader work: win the epoch if needed, then tick. */
  private async step(signal: AbortSignal): Promise<"ok" | "failed" | "fenced"> {
    const log = this.d.logger;
    try {
      if (this.epoch === undefined) {
        await this.publisher.leader();
        // Read, then compare-and-set (leader/store.ts): a bump of ours that lands late, after
        // this term ended, cannot take the epoch from a successor. Each goes ahead only
        // while this term lasts: neither ended (the signal) nor past the lease by our own
        // clock (isLeader, which a late timer cannot hold up).
        const seen = await this.d.store.currentEpoch();
        if (signal.aborted || !this.d.isLeader()) return "failed";
        const epoch = await this.d.store.bumpEpoch(this.d.id, seen);
        if (signal.aborted) return "failed";
        this.epoch = epoch;
        // Winning the epoch is progress (./stall.ts): a slow win and a slow first tick
        // are each judged against the stall limit, not their sum.
        this.stall.progressed();
        const ago = await this.d.store.lastRebalanceAgoMs();
        this.lastRebalanceAt = ago === null ? -Infinity : this.d.clock.now() - ago;
        this.d.metrics.epoch.set(this.epoch);
        this.d.metrics.elections.inc();
        log.info({ category: "INSTANCE", epoch: this.epoch }, "leading with a new fencing epoch");
        await this.publisher.leader();
        this.publisher.nudge({ t: "leader", id: this.d.id, epoch: this.epoch });
      }
      await this.tick(this.epoch, signal);
      this.stall.progressed();
      this.st.lastError = undefined;
      return "ok";
    } catch (err) {
      if (isAbortError(err) || signal.aborted) return "failed";
      if (err instanceof EpochMovedError) {
        // Someone bumped between our read and our bump: a late bump of an earlier term, or
        // another agent that believes it holds the lease too (a Redis failover). PostgreSQL
        // answered, which is progress; read again at once while the lease is ours.
        this.stall.progressed();
        if (!this.d.isLeader()) return "failed";
        log.info({ category: "INSTANCE", seen: err.seen }, "the fencing epoch moved before our bump; reading it again");
        this.pending = true;
        return "failed";
      }
      if (err instanceof FencedOutError) {
        log.warn({ category: "INSTANCE", err }, "fenced out: a newer leader exists; stepping down");
        this.d.onFenced();
        return "fenced";
      }
      this.lastFailureAt = this.d.clock.now();
      const msg = err instanceof Error ? err.message : String(err);
      if (msg !== this.st.lastError) log.warn({ category: "ERROR", err }, "leader tick failed; retrying");
      this.st.lastError = msg;
      return "failed";
    }
  }

  private async waitForWork(ms: number, signal: AbortSignal): Promise<void> {
    if (this.pending) {
      this.pending = false;
      // Coalesce a burst of nudges into one tick.
      await this.d.clock.sleep(20, signal).catch(() => {});
      return;
    }
    const ctl = new AbortController();
    const onAbort = () => cancel(ctl);
    signal.addEventListener("abort", onAbort, { once: true });
    this.wake = () => cancel(ctl);
    try {
      await this.d.clock.sleep(ms, ctl.signal);
    } catch {
      // woken early by a nudge or by leadership ending
    } finally {
      this.wake = undefined;
      signal.removeEventListener("abort", onAbort);
    }
    this.pending = false;
  }

  /**
   * One tick in three stages: read the sources, plan and write, then the bookkeeping.
   * Each completed stage, and each completed statement of the write (./store.ts sends a
   * large one in batches), is progress for the stall watch (./stall.ts): a tick that keeps
   * completing its stages (a starved CPU: sixteen agents starting on two cores; a cold
   * start's 75,000 moves) is slow, not stalled; a stage that hangs (a blackholed
   * PostgreSQL) still is.
   */
  private async tick(epoch: number, signal: AbortSignal): Promise<void> {
    const t0 = this.d.clock.now();
    if (!this.d.isLeader()) return;
    this.d.metrics.isLeader.set(1);
    const sources = await this.read(epoch);
    this.stall.progressed();
    const written = await this.write(epoch, sources, signal);
    if (written === undefined) return;
    this.stall.progressed();
    await this.bookkeep(epoch, sources, written);
    this.st.lastTickAt = this.d.clock.now();
    this.d.metrics.leaderTickSeconds.observe((this.d.clock.now() - t0) / 1000);
  }

  /** The tick's reads: membership, rows, instances, catalog, legacy members, health. */
  private async read(epoch: number): Promise<PlanSources> {
    await this.publisher.leader();
    // This term's own ticks read the rows from the store's mirror of its writes (leader/store.ts).
    return readPlanSources({ ...this.readers(), store: { load: () => this.d.store.load({ epoch, now: this.d.clock.now() }) } });
  }

  /**
   * Plans and writes the difference in one fenced transaction. Returns the plan and the
   * members the rows named before it; undefined when the tick ends early (aborted, or no
   * longer leading).
   */
  private async write(epoch: number, sources: PlanSources, signal: AbortSignal): Promise<{ p: Plan; named: ReadonlySet<string> } | undefined> {
    const { store, tracker } = this.d;
    const { snapshot: snap, state } = sources;
    const rows = this.rowsSummaries.of(state.rows, state.rowsVersion);
    tracker.watch(rows.owners);
    await this.publisher.mode(state.flag);
    if (signal.aborted) return undefined;
    // Which Redis the deciders read: agents count a Redis-confirmed heartbeat only from it.
    if (snap.channels.redis && snap.incarnation && `${epoch}/${snap.incarnation}` !== this.recordedRedis) {
      await store.recordRedis(epoch, snap.incarnation);
      this.recordedRedis = `${epoch}/${snap.incarnation}`;
    }

    const policy = this.policy(snap, rows.owned, sources.catalog.length);
    // After this leader's own PostgreSQL trouble, members' "cut" flags may describe an
    // outage that just ended for everyone: wait a HEARTBEAT_TIMEOUT before acting on them.
    const honourPgCut = this.d.clock.now() - this.lastFailureAt >= this.d.config.heartbeatTimeoutMs;
    const hashSettled = this.d.clock.now() - (snap.viewChangedAt ?? 0) >= this.d.config.hashSettleMs;
    const healthBudget = this.streamHealth.budget();
    const p = this.memo.plan(buildPlanInput(sources, { epoch, policy, requireWorker: this.d.requireWorker, stamped: this.stamped, honourPgCut, hashSettled, healthSettings: this.d.config.streamHealth, healthBudget }), state.rowsVersion);
    const events = this.accounting.events(p, state.rows);
    const changed = p.ops.length > 0 || p.bump.size > 0 || p.statuses.size > 0;
    if (changed) {
      // Cheap local check first; the epoch check inside the transaction is the real fence.
      if (!this.d.isLeader()) return undefined;
      const sessions = new Map<string, string>();
      for (const id of p.bump) {
        const session = snap.members.get(id)?.hb?.session;
        if (session) sessions.set(id, session);
      }
      // Each completed statement is progress (a large write is slow, not stalled); none is sent once the term ended.
      const versions = await store.apply(epoch, p.ops, p.bump, p.statuses, events, sessions, { progress: () => this.stall.progressed(), signal });
      for (const [id, session] of sessions) this.stamped.set(id, session);
      await this.publisher.versions(versions);
      this.publisher.nudge({ t: "assign", epoch, versions: Object.fromEntries(versions) });
      this.accounting.account(p);
    }
    return { p, named: rows.named };
  }

  /** After the write: health, the rebalance record, stats, figures, pruning. */
  private async bookkeep(epoch: number, sources: PlanSources, { p, named }: { p: Plan; named: ReadonlySet<string> }): Promise<void> {
    const { snapshot: snap, state } = sources;
    await this.streamHealth.applied(epoch, p);
    if (p.result.rebalanced) {
      this.lastRebalanceAt = this.d.clock.now();
      const reason = p.result.moves.find((m) => m.reason === "join" || m.reason === "imbalance" || m.reason === "manual" || m.reason === "capacity")?.reason ?? "imbalance";
      this.d.metrics.rebalances.inc({ reason });
      this.st.lastRebalance = { at: new Date(this.d.clock.wall()).toISOString(), reason, moved: p.result.moves.length };
    }
    this.forceNext = false;
    this.lastPool = new Map(p.pool.filter((m) => !m.draining && m.capacity > 0).map((m) => [m.id, m.capacity]));
    this.accounting.report(p, sources.catalog.length);
    await this.housekeeping.saveStats(epoch, snap);
    this.streamHealth.figures(sources.catalog, snap, state.rows);
    await this.housekeeping.pruneMembers(snap, named);
    await this.housekeeping.pruneEvents();
  }

  /**
   * What a forced tick (POST /rebalance) would do now, from the same sources and inputs
   * as a tick; changes nothing. Any agent may ask: `epoch` is the leader's as it knows it,
   * and the session stamps are this term's while this agent leads (they only decide
   * which members' versions move, never a stream's placement).
   */
  async dryRun(epoch: number): Promise<Plan> {
    // Any agent may ask: a follower reads the whole membership for it (and for a while after).
    const sources = await readPlanSources({ ...this.readers(), tracker: { refresh: () => this.d.tracker.refreshWhole(DRY_RUN_WHOLE_MS) } });
    const policy = rebalancePolicy(this.d.config, { rebalanceAllowed: true, force: true });
    const stamped = this.d.isLeader() ? this.stamped : undefined;
    return plan(buildPlanInput(sources, { epoch, policy, requireWorker: this.d.requireWorker, stamped, healthSettings: this.d.config.streamHealth, healthBudget: 0 }));
  }

  private readers() {
    const { tracker, store, catalog, legacy, config, health } = this.d;
    return { tracker, store, catalog, legacy, catalogRefreshMs: config.catalogRefreshMs, health, healthSettings: config.streamHealth };
  }

  /** Cooldown, and the triggers that are not subject to it (a member joined, capacity changed). */
  private policy(snap: Snapshot, owned: ReadonlyMap<string, number>, streams: number) {
    const cfg = this.d.config;
    const now = this.d.clock.now();
    const reason = rebalanceTrigger(snap.members.values(), this.lastPool, owned, streams, this.d.requireWorker);
    const cooled = now - this.lastRebalanceAt >= cfg.rebalanceCooldownMs;
    return rebalancePolicy(cfg, { rebalanceAllowed: cooled || reason !== undefined, force: this.forceNext, rebalanceReason: reason ?? "imbalance" });
  }
}
