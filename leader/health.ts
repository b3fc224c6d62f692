/**
 * The leader's side of stream health: the failure budget, the fenced writing of each
 * plan's health changes, and the figures (metrics, one sample a minute) the operators'
 * views show.
 *
 * Guarantees: failure-driven changes never exceed STREAM_FAILOVER_BUDGET per minute
 * (a token bucket on the leader's clock, full at the start of a term); health changes are
 * written only while this leader's epoch is current (LeaderStore.checkEpoch in the same
 * transaction), after the plan's row changes landed; the figures are best effort, never
 * fail a tick and are computed beside the ticks, not in them. Does not: decide anything
 * (shared/placement/health-rules.ts does), or survive a leader change: a new leader starts
 * with a full budget.
 */
import type { Clock } from "../shared/clock.js";
import type { StreamHealthSettings } from "../shared/config.js";
import { FailureMemo, type Logger } from "../shared/logger.js";
import { FAILOVER_REASONS, type Metrics } from "../shared/metrics.js";
import type { Plan } from "../shared/placement/plan.js";
import { healthOf, noHealth } from "../shared/stream-health.js";
import type { StreamHealthStore } from "../shared/stream-health-store.js";
import type { Snapshot } from "../shared/membership.js";
import { isLive } from "../shared/member-state.js";
import type { Stream, StreamId } from "../shared/types.js";
import type { LeaderStore } from "./store.js";

export interface LeaderHealthDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly settings: StreamHealthSettings;
  readonly store: Pick<StreamHealthStore, "applyHealth" | "readStates" | "saveSample" | "pruneFailures">;
  readonly fence: Pick<LeaderStore, "checkEpoch">;
  /** How often the figures are refreshed. */
  readonly figuresEveryMs: number;
}

const MINUTE = 60_000;
const FAILOVER = new Set<string>(FAILOVER_REASONS);

export class LeaderHealth {
  private tokens: number;
  private refilledAt: number;
  private lastFiguresAt = -Infinity;
  private lastPruneAt = -Infinity;
  /** The figures being computed, if any. */
  private running: Promise<void> | undefined;
  private readonly figuresFailure = new FailureMemo();

  constructor(private readonly d: LeaderHealthDeps) {
    this.tokens = d.settings.failoverBudgetPerMinute;
    this.refilledAt = d.clock.now();
  }

  /** A new term: a full budget. */
  newTerm(): void {
    this.tokens = this.d.settings.failoverBudgetPerMinute;
    this.refilledAt = this.d.clock.now();
  }

  /** Failure-driven changes the next plan may make. */
  budget(): number {
    const now = this.d.clock.now();
    const rate = this.d.settings.failoverBudgetPerMinute / MINUTE;
    this.tokens = Math.min(this.d.settings.failoverBudgetPerMinute, this.tokens + (now - this.refilledAt) * rate);
    this.refilledAt = now;
    return Math.floor(this.tokens);
  }

  /** After the plan's rows landed: its health changes (fenced), what it spent, and the move metrics. */
  async applied(epoch: number, p: Plan): Promise<void> {
    this.tokens = Math.max(0, this.tokens - p.healthSpent);
    // Counted when the stream is taken from its worker (a failing or degraded worker is live: a revoke).
    for (const op of p.ops) if (op.op === "revoke" && FAILOVER.has(op.reason)) this.d.metrics.streamFailovers.inc({ reason: op.reason });
    if (p.healthOps.length === 0) return;
    await this.d.store.applyHealth(p.healthOps, (tx) => this.d.fence.checkEpoch(tx, epoch));
    for (const op of p.healthOps) {
      if (op.op === "quarantine") this.d.logger.warn({ category: "STREAM", stream: op.stream, retries: op.retries, retryInS: Math.round(op.retryInMs / 1000) }, "stream quarantined: it failed on every worker it was tried on");
      else this.d.logger.info({ category: "STREAM", stream: op.stream, instance: op.instance, error: op.error }, "stream failure charged to its worker; it moves");
    }
  }

  /**
   * Health metrics and the minute's sample, every figuresEveryMs, beside the ticks (a
   * whole-table read the tick does not wait for; one at a time). Best effort: a failure
   * is logged once and never fails the tick (the assignment work it follows is done).
   * `rows` are read when the health states have arrived (the leader's rows of that moment).
   */
  figures(catalog: readonly Stream[], snap: Snapshot, rows: ReadonlyMap<StreamId, { owner: string; state: string }>): void {
    const now = this.d.clock.now();
    if (this.running || now - this.lastFiguresAt < this.d.figuresEveryMs) return;
    this.lastFiguresAt = now;
    this.running = this.computeFigures(now, catalog, snap, rows).finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves once no figures are being computed (the leader waits for it when its term ends). */
  async idle(): Promise<void> {
    await this.running;
  }

  private async computeFigures(now: number, catalog: readonly Stream[], snap: Snapshot, rows: ReadonlyMap<StreamId, { owner: string; state: string }>): Promise<void> {
    try {
      const states = await this.d.store.readStates();
      const holder = new Map<StreamId, string>();
      for (const m of snap.members.values()) if (isLive(m)) for (const s of m.hb.held) holder.set(s, m.id);
      const counts = noHealth();
      let served = 0;
      let healthy = 0;
      for (const s of catalog) {
        const h = holder.get(s.id);
        const health = healthOf(states.get(s.id), h ?? rows.get(s.id)?.owner ?? null);
        counts[health]++;
        if (h !== undefined) {
          served++;
          if (health === "ok") healthy++;
        }
      }
      for (const [h, n] of Object.entries(counts)) this.d.metrics.streamsHealth.set({ health: h }, n);
      await this.d.store.saveSample(catalog.length, served, healthy);
      if (now - this.lastPruneAt >= 10 * MINUTE) {
        this.lastPruneAt = now;
        await this.d.store.pruneFailures(this.d.settings.failureMemoryMs);
      }
      this.figuresFailure.succeeded();
    } catch (err) {
      if (this.figuresFailure.failed(err)) this.d.logger.warn({ category: "ERROR", err }, "stream health figures could not be read or saved; assignments are unaffected");
    }
  }
}
