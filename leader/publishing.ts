/**
 * What a leader publishes in Redis for everyone else: who leads (the leader info, kept
 * fresh on its own timer), the members' committed versions, the flag mirror (at once when
 * the flag changed, else at most every leaderInfoPublishMs) and nudges.
 *
 * Guarantees: leader-info writes are chained and each describes the state when it is
 * SENT, so a slow earlier write ("not ready yet") never lands after a later one; no write
 * is made without holding the lease; `clear` waits for the last write before removing the
 * info. Does not: decide anything it publishes (leader/leader.ts), nor fence (the Redis
 * scripts in shared/redis-scripts.ts compare the lease value they are given); a nudge that
 * fails is dropped (agents also poll).
 */
import type { Clock } from "../shared/clock.js";
import type { Config } from "../shared/config.js";
import type { ClusterFlag } from "../shared/membership.js";
import type { RedisProtocol } from "../shared/redis-protocol.js";
import type { LeaderInfo, Nudge } from "../shared/types.js";

export interface LeaderPublisherDeps {
  readonly id: string;
  readonly clock: Clock;
  readonly protocol: RedisProtocol;
  /** LEADER_LEASE_TTL (the info's freshness is judged against it) and how often the info is written. */
  readonly config: Pick<Config, "leaderLeaseTtlMs" | "timings">;
  readonly isLeader: () => boolean;
  readonly leaseToken: () => string | undefined;
  /** This term's epoch; undefined until won (the info then says "not ready"). */
  readonly epoch: () => number | undefined;
}

export class LeaderPublisher {
  private publishing: Promise<void> = Promise.resolve();
  /** The flag last mirrored to Redis, and when (mode()). */
  private modePublished: { key: string; at: number } | undefined;

  constructor(private readonly d: LeaderPublisherDeps) {}

  /**
   * Publishes who leads. Writes are chained, and each describes the state when it is
   * SENT, so a slow earlier write ("not ready yet") can never land after a later one.
   */
  leader(): Promise<void> {
    const next = this.publishing.then(async () => {
      const token = this.d.leaseToken();
      if (!token) return;
      const epoch = this.d.epoch();
      const info: LeaderInfo = { id: this.d.id, epoch: epoch ?? 0, ready: epoch !== undefined };
      await this.d.protocol.publishLeader(token, info, this.d.config.leaderLeaseTtlMs);
    });
    this.publishing = next.catch(() => {});
    return next;
  }

  /** Keeps the leader info fresh until `signal` aborts, even while a tick waits on a slow or dead PostgreSQL. */
  async whileLeading(signal: AbortSignal): Promise<void> {
    const every = this.d.config.timings.leaderInfoPublishMs;
    while (!signal.aborted) {
      if (this.d.isLeader()) await this.leader().catch(() => {});
      await this.d.clock.sleep(every, signal).catch(() => {});
    }
  }

  /** Stops naming this leader, after the last write of its info (best effort). */
  async clear(): Promise<void> {
    this.modePublished = undefined;
    await this.publishing;
    await this.d.protocol.clearLeader(this.d.id).catch(() => {});
  }

  async versions(versions: ReadonlyMap<string, number>): Promise<void> {
    await this.d.protocol.publishVersions(versions);
  }

  /**
   * Mirrors the flag to Redis: at once when it changed, else at most every
   * leaderInfoPublishMs (a Redis that lost its data has it back within that; agents take
   * the newest flag they know, so a missing mirror only delays news, never reverses it).
   */
  async mode(flag: ClusterFlag): Promise<void> {
    const key = `${flag.mode}/${flag.version}`;
    const now = this.d.clock.now();
    const last = this.modePublished;
    if (last && last.key === key && now - last.at < this.d.config.timings.leaderInfoPublishMs) return;
    await this.d.protocol.publishMode(flag);
    this.modePublished = { key, at: now };
  }

  nudge(n: Nudge): void {
    this.d.protocol.publishNudge(n).catch(() => {
      // Nudges only speed things up; agents also poll.
    });
  }
}
