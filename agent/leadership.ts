/**
 * The leader side of one agent: the lease (Redlock over the lock clients), the elector
 * that competes for it, and the leader loop that runs while it is held.
 *
 * Guarantees: the leader loop runs only within a term the elector started and stops with
 * that term's signal; a leader fenced out by a newer epoch resigns, and one that stalls
 * steps aside and holds off for leaderHoldOffMs; close() ends the term and waits for the
 * loop. Does not: decide anything about streams (leader/leader.ts) or about when a term
 * starts and ends (leader/elector.ts).
 */
import type { Redis } from "ioredis";
import { Elector } from "../leader/elector.js";
import { RedlockLease } from "../leader/lease.js";
import { LeaderLoop, type LeaderDeps } from "../leader/leader.js";

export type LeadershipDeps = Omit<LeaderDeps, "isLeader" | "leaseToken" | "onFenced" | "onStalled"> & {
  /** The Redis clients the lease's quorum is taken on. */
  readonly lockClients: Redis[];
  readonly leaseKey: string;
  /** When a follower may try to take the lease (Elector's acquireInMs). */
  readonly acquireInMs?: () => number;
};

export class Leadership {
  readonly elector: Elector;
  readonly leader: LeaderLoop;
  private run: Promise<void> | undefined;

  /** `d.logger` is the agent's: the leader loop and the elector log as their own components. */
  constructor(d: LeadershipDeps) {
    const { lockClients, leaseKey, acquireInMs, ...loop } = d;
    const { config, clock, logger } = d;
    const t = config.timings;
    const lease = new RedlockLease(lockClients, leaseKey, clock);
    this.leader = new LeaderLoop({
      ...loop,
      logger: logger.child({ component: "leader" }),
      isLeader: () => this.elector.isLeader(),
      leaseToken: () => lease.token,
      onFenced: () => void this.elector.resign(),
      onStalled: (why) => void this.elector.stepAside(t.leaderHoldOffMs, why),
    });
    this.elector = new Elector({
      id: config.instanceId,
      lease,
      clock,
      logger: logger.child({ component: "elector" }),
      ttlMs: config.leaderLeaseTtlMs,
      renewIntervalMs: t.electorRenewMs,
      retryIntervalMs: t.electorRetryMs,
      acquireInMs,
      onStartedLeading: (signal) => {
        this.run = this.leader.run(signal).catch((err) => logger.error({ err, category: "ERROR" }, "leader loop crashed"));
      },
    });
  }

  /** Ends the current term (if any) and waits for the leader loop to stop. */
  async close(): Promise<void> {
    await this.elector.close().catch(() => {});
    await this.run;
  }
}
