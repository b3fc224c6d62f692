/**
 * The worker's capture outcomes, as this agent sees them: written to PostgreSQL for the
 * cluster (shared/stream-health-store.ts) and turned into the worker's own health.
 *
 * Guarantees:
 * - Only outcomes of streams the worker may hold now count; `processing` and unknown
 *   statuses count for nothing; the older API's `completed` is a success.
 * - A change (first success, first failure, success after failure or back) is written at
 *   once; an unchanged outcome at most every outcomeRewriteMs. At most one write is in
 *   flight (a PostgreSQL that does not answer holds one connection); a failed write is
 *   retried with the next outcome; neither ever blocks the worker's call.
 * - DEGRADED, the one home of that rule: while the worker reports `rate_limited_until` in
 *   the future ("rate-limited"), or once at least 80 % of at least 3 of its streams with a
 *   recent outcome (outcomeWindowMs) have been failing together for degradeAfterMs
 *   ("failures"). A degraded worker's failures are not charged to its streams: its open
 *   failure episodes are closed and no new failure is written while it lasts. It ends
 *   with the first success, when the pause ends, or after degradedHoldMs (then the
 *   worker must show failures again to be degraded again).
 * Does not: move anything. The heartbeat carries `degraded()`; the leader acts on it
 * (shared/placement/health-rules.ts).
 */
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import { FailureMemo } from "../shared/logger.js";
import type { StreamHealthStore } from "../shared/stream-health-store.js";
import type { Timings } from "../shared/timings.js";
import type { StreamId, WorkerDegraded } from "../shared/types.js";

export interface Outcome {
  readonly id: StreamId;
  readonly status: string;
  readonly error?: string | undefined;
}

export interface OutcomeDeps {
  readonly id: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly store: Pick<StreamHealthStore, "recordOutcomes" | "clearEpisodes">;
  readonly timings: Pick<Timings, "degradeAfterMs" | "degradedHoldMs" | "outcomeWindowMs" | "outcomeRewriteMs">;
  /** Streams the worker may hold now. */
  readonly held: () => readonly StreamId[];
}

/** The longest pause a worker may announce: fingerv7's own cap is 30 minutes. */
const MAX_PAUSE_MS = 2 * 3_600_000;
const DEGRADED_SHARE = 0.8;
const DEGRADED_MIN_STREAMS = 3;

interface StreamState {
  ok: boolean;
  at: number;
  error: string | null;
  writtenOk: boolean | undefined;
  writtenAt: number;
}

export function outcomeKind(status: string): "ok" | "failed" | undefined {
  const s = status.toLowerCase();
  if (s === "ok" || s === "completed") return "ok";
  if (s === "failed") return "failed";
  return undefined;
}

export class StreamOutcomes {
  private readonly states = new Map<StreamId, StreamState>();
  private pendingOk = new Set<StreamId>();
  private pendingFail = new Map<StreamId, string | null>();
  private clearPending = false;
  private failingSince: number | undefined;
  private degradedAt: number | undefined;
  private pausedUntilWall = 0;
  /** The write in flight (at most one: a blackholed PostgreSQL holds one connection, not one per report). */
  private writing: Promise<void> | undefined;
  private again = false;
  private readonly memo = new FailureMemo();

  constructor(private readonly d: OutcomeDeps) {}

  /** A report from the worker. `rateLimitedUntil`: an ISO time, null to clear, undefined to leave as is. */
  report(outcomes: readonly Outcome[], rateLimitedUntil?: string | null): void {
    const now = this.d.clock.now();
    if (rateLimitedUntil === null) this.pausedUntilWall = 0;
    else if (rateLimitedUntil !== undefined) {
      const t = Date.parse(rateLimitedUntil);
      const wall = this.d.clock.wall();
      if (Number.isFinite(t)) {
        if (t > wall && this.pausedUntilWall <= wall) this.clearPending = true; // a pause began: its failures are not the streams'
        this.pausedUntilWall = Math.min(t, wall + MAX_PAUSE_MS);
      }
    }
    const held = new Set(this.d.held());
    let sawOk = false;
    for (const o of outcomes) {
      const kind = outcomeKind(o.status);
      if (kind === undefined || !held.has(o.id)) continue;
      const ok = kind === "ok";
      sawOk ||= ok;
      const st = this.states.get(o.id) ?? { ok, at: now, error: null, writtenOk: undefined, writtenAt: -Infinity };
      st.ok = ok;
      st.at = now;
      st.error = ok ? null : (o.error ?? null);
      this.states.set(o.id, st);
      const due = st.writtenOk !== ok || now - st.writtenAt >= this.d.timings.outcomeRewriteMs;
      if (!due) continue;
      if (ok) {
        this.pendingFail.delete(o.id);
        this.pendingOk.add(o.id);
      } else {
        this.pendingOk.delete(o.id);
        this.pendingFail.set(o.id, st.error);
      }
    }
    if (sawOk && this.degradedAt !== undefined) this.endDegraded("a success was reported");
    this.judge(now, held);
    void this.flush();
  }

  /** The worker's degraded state now, as the heartbeat publishes it. */
  degraded(now = this.d.clock.now()): WorkerDegraded | undefined {
    const wall = this.d.clock.wall();
    if (this.pausedUntilWall > wall) return { reason: "rate-limited", until: new Date(this.pausedUntilWall).toISOString() };
    if (this.degradedAt !== undefined && now - this.degradedAt >= this.d.timings.degradedHoldMs) this.endDegraded("the hold ended");
    return this.degradedAt !== undefined ? { reason: "failures" } : undefined;
  }

  /**
   * Writes what is pending. One write at a time: while one is in flight, later calls only
   * ask for one more pass after it (what is pending accumulates per stream, bounded).
   */
  flush(): Promise<void> {
    if (this.writing) {
      this.again = true;
      return this.writing;
    }
    this.writing = (async () => {
      try {
        do {
          this.again = false;
          await this.writeOnce();
        } while (this.again);
      } finally {
        // In the same step as the last check of `again`: a later call starts a new write.
        this.writing = undefined;
      }
    })();
    return this.writing;
  }

  private async writeOnce(): Promise<void> {
    const charged = this.degraded() === undefined;
    const clear = this.clearPending;
    const ok = [...this.pendingOk];
    const failed = charged ? [...this.pendingFail].map(([id, error]) => ({ id, error })) : [];
    if (!clear && ok.length === 0 && failed.length === 0) return;
    this.clearPending = false;
    this.pendingOk = new Set();
    this.pendingFail = new Map(); // a degraded worker's failures are dropped, not charged later
    try {
      if (clear) await this.d.store.clearEpisodes(this.d.id);
      await this.d.store.recordOutcomes(this.d.id, ok, failed);
      const now = this.d.clock.now();
      for (const id of ok) this.markWritten(id, true, now);
      for (const f of failed) this.markWritten(f.id, false, now);
      if (this.memo.message !== undefined) this.d.logger.info({ category: "STREAM" }, "stream outcomes are recorded again");
      this.memo.succeeded();
    } catch (err) {
      // Keep them for the next attempt (a newer outcome of the same stream wins).
      this.clearPending ||= clear;
      for (const id of ok) if (!this.pendingFail.has(id)) this.pendingOk.add(id);
      for (const f of failed) if (!this.pendingOk.has(f.id) && !this.pendingFail.has(f.id)) this.pendingFail.set(f.id, f.error);
      if (this.memo.failed(err)) this.d.logger.warn({ category: "ERROR", err }, "could not record stream outcomes; will retry");
    }
  }

  private markWritten(id: StreamId, ok: boolean, now: number): void {
    const st = this.states.get(id);
    if (st) (st.writtenOk = ok), (st.writtenAt = now);
  }

  /** The "failures" rule: most recent outcomes failed, together, for degradeAfterMs. */
  private judge(now: number, held: ReadonlySet<StreamId>): void {
    let total = 0;
    let failed = 0;
    for (const [id, st] of this.states) {
      if (!held.has(id) || now - st.at > this.d.timings.outcomeWindowMs) {
        if (!held.has(id)) this.states.delete(id);
        continue;
      }
      total++;
      if (!st.ok) failed++;
    }
    const together = total >= DEGRADED_MIN_STREAMS && failed >= DEGRADED_SHARE * total;
    if (!together) {
      this.failingSince = undefined;
      return;
    }
    this.failingSince ??= now;
    if (this.degradedAt === undefined && now - this.failingSince >= this.d.timings.degradeAfterMs) {
      this.degradedAt = now;
      this.clearPending = true;
      this.pendingFail.clear();
      this.d.logger.warn({ category: "STREAM", failed, of: total }, "worker degraded: most of its streams fail together; they move elsewhere and are not charged");
    }
  }

  private endDegraded(why: string): void {
    this.degradedAt = undefined;
    this.failingSince = undefined;
    // Fresh evidence is needed to degrade it again.
    for (const st of this.states.values()) st.at = -Infinity;
    this.d.logger.info({ category: "STREAM", why }, "worker no longer degraded");
  }
}
