/**
 * A leader's bookkeeping after each tick's write: the members' stats saved (every
 * timings.statsSaveMs), members gone for long forgotten, old events pruned (every
 * timings.eventPruneMs, those older than EVENT_RETENTION).
 *
 * Guarantees: stats and event pruning run at most once per their interval (counted from
 * the last run, across terms); a member is forgotten only when absent, left or dead,
 * silent for longer than timings.memberForgetMs, and owning no rows — in Redis, in PostgreSQL's
 * heartbeats and in the tracker. Does not: fence its own writes beyond what the store
 * does (leader/store.ts), nor decide when a tick runs (leader/leader.ts).
 */
import type { Snapshot } from "../shared/membership.js";
import type { LeaderDeps } from "./leader.js";

export type LeaderHousekeepingDeps = Pick<LeaderDeps, "clock" | "config" | "logger" | "protocol" | "tracker" | "store" | "forgetHeartbeats">;

export class LeaderHousekeeping {
  private lastStatsAt = -Infinity;
  private lastEventPruneAt = -Infinity;

  constructor(private readonly d: LeaderHousekeepingDeps) {}

  async saveStats(epoch: number, snap: Snapshot): Promise<void> {
    const now = this.d.clock.now();
    if (now - this.lastStatsAt < this.d.config.timings.statsSaveMs) return;
    this.lastStatsAt = now;
    const stats = [...snap.members.values()]
      .filter((m) => m.hb && m.status !== "dead")
      .map((m) => ({ id: m.id, processed: m.hb!.worker.processed, errors: m.hb!.worker.errors, capacity: m.hb!.capacity }));
    await this.d.store.saveStats(epoch, stats);
  }

  /**
   * Forgets members gone for long (left, or dead) that own no rows, so the member set
   * does not grow forever. Their history stays in Postgres.
   */
  async pruneMembers(snap: Snapshot, owners: ReadonlySet<string>): Promise<void> {
    const goneForMs = this.d.config.timings.memberForgetMs;
    const prune = [...snap.members.values()].filter((m) => !m.present && (m.status === "left" || m.status === "dead") && m.silentMs > goneForMs && !owners.has(m.id));
    if (prune.length === 0) return;
    await this.d.protocol.pruneMembers(prune.map((m) => m.id));
    await this.d.forgetHeartbeats(prune.map((m) => m.id));
    for (const m of prune) this.d.tracker.forget(m.id);
    this.d.logger.info({ category: "INSTANCE", pruned: prune.map((m) => m.id) }, "forgot members gone for long");
  }

  async pruneEvents(): Promise<void> {
    const now = this.d.clock.now();
    if (now - this.lastEventPruneAt < this.d.config.timings.eventPruneMs) return;
    this.lastEventPruneAt = now;
    const n = await this.d.store.pruneEvents(this.d.config.eventRetentionMs);
    if (n > 0) this.d.logger.info({ category: "PERF", deleted: n }, "pruned old events");
  }
}
