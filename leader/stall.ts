/**
 * When a leader should step aside: it has made no progress (won its epoch, completed a
 * tick, a stage of one, or a statement of its fenced write: leader/leader.ts,
 * leader/store.ts; so the limit bounds each statement of a large write, not the write)
 * for leaderStallMs (LEADER_LEASE_TTL) while another live member reports reaching
 * PostgreSQL. The trouble is then this leader's own link, so another member would do
 * better.
 *
 * Guarantees: a hung tick (a blackholed PostgreSQL answers nothing, ever) is checked
 * when LEADER_LEASE_TTL (the stall limit) has passed since the last progress, then every
 * STALL_POLL_MS, and never has a second tick started beside it; when nobody reaches
 * PostgreSQL the leader stays (stepping aside would only churn the lease). Does not: give
 * up the lease itself — `onStalled` asks the elector to, which then holds off.
 */
import { cancel, type Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import { isLive } from "../shared/member-state.js";
import type { Snapshot } from "../shared/membership.js";

/** How often a hung tick is checked for a stall. */
const STALL_POLL_MS = 250;

export interface StallWatchDeps {
  readonly id: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly stallMs: number;
  /** The latest membership view (the tracker's). */
  readonly membership: () => Snapshot | undefined;
  /** The leader's last tick error, for the step-aside line. */
  readonly lastError: () => string | undefined;
  readonly onStalled: (why: string) => void;
}

export class StallWatch {
  /** Progress = the epoch won, or a completed tick, stage of one, or statement of its write. */
  private lastProgressAt = 0;

  constructor(private readonly d: StallWatchDeps) {}

  progressed(): void {
    this.lastProgressAt = this.d.clock.now();
  }

  /**
   * Waits for the work; while it hangs past the stall limit, checks every STALL_POLL_MS
   * whether to step aside.
   * "stalled" when it stepped aside (or leadership ended) before the work finished.
   */
  async await<T>(p: Promise<T>, signal: AbortSignal): Promise<T | "stalled"> {
    const work = settle(p);
    // One timer per wait, stopped when the work ends: a tick that ends in time wakes nothing.
    const timers = new AbortController();
    const stop = () => cancel(timers);
    signal.addEventListener("abort", stop, { once: true });
    try {
      while (!work.done && !signal.aborted) {
        // Nothing is stalled before the limit from the last progress: sleep until then.
        const wait = Math.max(STALL_POLL_MS, this.lastProgressAt + this.d.stallMs - this.d.clock.now());
        await Promise.race([work.promise, this.d.clock.sleep(wait, timers.signal).catch(() => {})]);
        if (!work.done && this.stepAsideIfStalled()) return "stalled";
      }
    } finally {
      cancel(timers);
      signal.removeEventListener("abort", stop);
    }
    return signal.aborted && !work.done ? "stalled" : work.promise;
  }

  /** Steps aside (through `onStalled`) when stalled; true when it did. */
  stepAsideIfStalled(): boolean {
    if (!this.stalled()) return false;
    const why = `no leader tick completed for ${this.d.stallMs / 1000} s while other members reach PostgreSQL`;
    this.d.logger.warn({ category: "INSTANCE", lastError: this.d.lastError() }, `${why}; stepping aside`);
    this.d.onStalled(why);
    return true;
  }

  private stalled(): boolean {
    if (this.d.clock.now() - this.lastProgressAt < this.d.stallMs) return false;
    const snap = this.d.membership();
    if (!snap) return false;
    for (const m of snap.members.values()) if (m.id !== this.d.id && isLive(m) && m.hb.pgOk === true) return true;
    return false;
  }
}

function settle<T>(p: Promise<T>): { readonly promise: Promise<T>; done: boolean } {
  const w = { promise: p, done: false };
  void p.finally(() => (w.done = true));
  return w;
}
