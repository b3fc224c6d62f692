/**
 * What the leader records about each tick's plan: the event rows written with it, the
 * move metrics and the per-tick log lines, and the figures LeaderStatus shows.
 *
 * Guarantees: a move is counted once, by the revoke that decided it (a handoff's later
 * put only observes its duration), or by the put when nothing was revoked (a failover);
 * the "unplaced" event is written only when the set of unplaced streams changes. Does
 * not: write anything itself — `events` returns the rows the tick writes in its fenced
 * transaction.
 */
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import type { Plan } from "../shared/placement/plan.js";
import type { StreamId } from "../shared/types.js";
import type { EventRow } from "./store.js";

export interface AccountingDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export class LeaderAccounting {
  private lastUnassignedKey = "";
  private revokedAt = new Map<StreamId, number>();
  unassigned: readonly StreamId[] = [];
  waiting = 0;
  lastPlan: { readonly moves: number; readonly byReason: Record<string, number> } | undefined;

  constructor(private readonly d: AccountingDeps) {}

  /** A new term: handoffs revoked in an earlier term are not timed. */
  newTerm(): void {
    this.revokedAt.clear();
  }

  events(p: Plan, rows: ReadonlyMap<StreamId, { owner: string; state: string }>): EventRow[] {
    const out: EventRow[] = [];
    const reasons = new Map(p.result.moves.map((m) => [m.stream, m.reason]));
    for (const op of p.ops) {
      if (op.op === "put" && op.from !== op.row.owner) {
        // A completed handoff keeps the reason it was revoked for (drain, imbalance, …),
        // whatever the assignor reports for the stream in this tick.
        const handoff = rows.get(op.row.stream)?.state === "revoking";
        out.push({ kind: "assign", stream_id: op.row.stream, from_instance: op.from, to_instance: op.row.owner, reason: handoff ? op.reason : (reasons.get(op.row.stream) ?? op.reason) });
      } else if (op.op === "revoke") {
        out.push({ kind: "revoke", stream_id: op.stream, from_instance: op.owner, to_instance: op.next, reason: op.reason });
      } else if (op.op === "delete") {
        out.push({ kind: "unassign", stream_id: op.stream, from_instance: op.owner, reason: op.reason });
      }
    }
    const unplaced = [...p.unplaced.keys()];
    const key = unplaced.map((s) => `${s}:${p.unplaced.get(s)}`).join(",");
    if (key !== this.lastUnassignedKey) {
      if (unplaced.length > 0) {
        const byReason: Record<string, number> = {};
        for (const why of p.unplaced.values()) byReason[why] = (byReason[why] ?? 0) + 1;
        const main = Object.entries(byReason).sort((a, b) => b[1] - a[1])[0]![0];
        out.push({ kind: "unplaced", reason: main as EventRow["reason"], detail: { count: unplaced.length, by_reason: byReason, streams: unplaced.slice(0, 100) } });
      }
      this.lastUnassignedKey = key;
    }
    return out;
  }

  /** Metrics and the per-tick log line: how many moved and why. */
  account(p: Plan): void {
    const now = this.d.clock.now();
    const byReason: Record<string, number> = {};
    for (const op of p.ops) {
      if (op.op === "revoke") {
        this.revokedAt.set(op.stream, now);
        byReason[op.reason] = (byReason[op.reason] ?? 0) + 1;
        this.d.metrics.moves.inc({ reason: op.reason });
      } else if (op.op === "put" && op.from !== op.row.owner) {
        const started = this.revokedAt.get(op.row.stream);
        if (started !== undefined) {
          this.d.metrics.handoffSeconds.observe((now - started) / 1000);
          this.revokedAt.delete(op.row.stream);
        } else {
          byReason[op.reason] = (byReason[op.reason] ?? 0) + 1;
          this.d.metrics.moves.inc({ reason: op.reason });
        }
      } else if (op.op === "delete") {
        this.revokedAt.delete(op.stream);
      }
    }
    const moved = Object.values(byReason).reduce((a, b) => a + b, 0);
    this.lastPlan = { moves: moved, byReason };
    if (moved > 0) {
      // Who could hold what, so a move's reason can be checked against the members' state.
      const members = Object.fromEntries(p.pool.map((m) => [m.id, `${p.result.targets.get(m.id) ?? 0}/${m.capacity}${m.draining ? " draining" : ""}`]));
      this.d.logger.info({ category: "BALANCE", moved, byReason, members, before: p.loadBefore, waiting: p.waiting.length, unassigned: p.result.unassigned.length }, `moved ${moved} stream(s)`);
    }
  }

  report(p: Plan, total: number): void {
    this.unassigned = [...p.unplaced.keys()];
    this.waiting = p.waiting.length;
    const m = this.d.metrics.clusterStreams;
    m.set({ state: "total" }, total);
    m.set({ state: "assigned" }, p.result.assignment.size);
    m.set({ state: "unassigned" }, p.unplaced.size);
    m.set({ state: "hashed" }, p.hashedOwned);
    m.set({ state: "legacy" }, p.legacyOwned);
    this.d.logger.debug({ category: "BALANCE", assigned: p.result.assignment.size, unassigned: p.result.unassigned.length, waiting: p.waiting.length, ops: p.ops.length }, "leader tick");
  }
}
