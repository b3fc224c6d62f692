/**
 * The heartbeat loop's one step: write this agent's heartbeat to both liveness channels,
 * Redis and PostgreSQL, and decide from what was confirmed whether the worker's lease is
 * renewed.
 *
 * Guarantees:
 * - The worker's lease is renewed only from a heartbeat a channel CONFIRMED (timed from
 *   before it was sent), never while the agent is withdrawn for a resync, and never from a
 *   failed attempt: an agent that can confirm on neither channel lets its worker stop at
 *   the lease's end, whatever ON_COORDINATION_LOSS says.
 * - ON_COORDINATION_LOSS=keep: a heartbeat confirmed by PostgreSQL alone renews (Redis
 *   unreachable: the deciders still see our progress there, so nobody takes our streams).
 *   stop: only a Redis-confirmed heartbeat renews (no serving while Redis is away; our
 *   PostgreSQL heartbeats keep us alive to the deciders, so nothing moves either).
 * - A Redis confirmation counts only from the Redis the deciders read: the leader records
 *   that Redis's incarnation in PostgreSQL, our PostgreSQL heartbeat write reads it back,
 *   and a reply from a Redis of another incarnation renews nothing unless PostgreSQL
 *   confirmed the same beat (and our heartbeat says Redis is down for us). Cut from
 *   PostgreSQL, the last value read still applies. Before any leader recorded one, every
 *   Redis counts.
 * - A gap between two attempts longer than the worker's lease (a freeze: SIGSTOP, a
 *   stalled VM, starvation), a lease that ran out, or our Redis heartbeat record found
 *   gone while we were live (deleted or pruned: trackers may have seen us absent; or no
 *   confirmed beat of ours for HEARTBEAT_TIMEOUT by Redis's clock although our own clock
 *   says less: a host suspended with its monotonic clock frozen, Redis's clock stepped
 *   forward) triggers a resync before anything is served again.
 * It does not decide what is offered (agent/offer.ts) nor who is alive (the tracker).
 */
import type { Clock } from "../shared/clock.js";
import type { CoordinationLossPolicy } from "../shared/config.js";
import { FailureMemo, type Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import type { PgHeartbeatWritten } from "../shared/pg-heartbeats.js";
import type { HeartbeatReply } from "../shared/redis-protocol.js";
import type { Heartbeat } from "../shared/types.js";
import type { Serving } from "./serving.js";

export type { HeartbeatReply };

/**
 * Whether a Redis confirmation counts: only from the Redis the deciders read, when a
 * leader recorded which one that is (`deciderRedis`: its incarnation; null or undefined:
 * nobody recorded one yet, every Redis counts).
 */
export function countsForDeciders(incarnation: string, deciderRedis: string | null | undefined): boolean {
  return deciderRedis === null || deciderRedis === undefined || deciderRedis === incarnation;
}

/** Whether a beat renews the worker's lease, given what each channel confirmed. */
export function renews(policy: CoordinationLossPolicy, confirmed: { readonly redis: boolean; readonly postgres: boolean }): boolean {
  return confirmed.redis || (policy === "keep" && confirmed.postgres);
}

/** The minimal interface the heartbeat loop needs from the agent around it. */
export interface HeartbeatDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly serving: Pick<Serving, "renew" | "leaseDeadline" | "leaseValid">;
  readonly workerLeaseMs: number;
  readonly policy: CoordinationLossPolicy;
  /** Writes the heartbeat to Redis; throws when Redis did not confirm it. */
  sendRedis(hb: Heartbeat): Promise<HeartbeatReply>;
  /** Writes it to PostgreSQL; throws when PostgreSQL did not confirm it in time. */
  sendPostgres(hb: Heartbeat): Promise<PgHeartbeatWritten>;
  build(now: number): Heartbeat;
  resyncing(): boolean;
  requireResync(now: number, why: string): void;
  onReply(reply: HeartbeatReply, hb: Heartbeat): void;
  /** The worker let go of something since the last beat: the leader may be waiting on it. */
  onReleased(): void;
}

export class HeartbeatLoop {
  private lastAttemptAt: number | undefined;
  private confirmed = { redis: false, postgres: false };
  private readonly failures = { redis: new FailureMemo(), postgres: new FailureMemo() };
  private lastReportedHeld: readonly string[] = [];
  private lastConfirmed: { at: number; incarnation: string } | undefined;
  /** When the PostgreSQL heartbeats started failing (undefined while they succeed). */
  private pgFailingSince: number | undefined;
  /** The deciders' Redis incarnation as last read from PostgreSQL (undefined: never read). */
  private deciderRedis: string | null | undefined;

  constructor(private readonly d: HeartbeatDeps) {}

  /** The last beat was confirmed by the deciders' Redis (where the leader and the flag are read). */
  get healthy(): boolean {
    return this.confirmed.redis;
  }

  /** What the last beat's channels confirmed. */
  get channels(): { readonly redis: boolean; readonly postgres: boolean } {
    return this.confirmed;
  }

  /** The Redis channel's current failure, if any. */
  get error(): string | undefined {
    return this.failures.redis.message;
  }

  /** How long the heartbeats to PostgreSQL have been failing (0 while they succeed). */
  postgresDownMs(now = this.d.clock.now()): number {
    return this.pgFailingSince === undefined ? 0 : now - this.pgFailingSince;
  }

  /**
   * Which channels this agent reached, for its next heartbeat: deciders use it to tell an
   * outage of one store for everyone from a member alive only there, and the leader gives
   * nothing to a member cut from PostgreSQL for half a HEARTBEAT_TIMEOUT (pgCut).
   */
  report(now: number, heartbeatTimeoutMs: number): { pgOk: boolean; redisOk: boolean; pgCut: boolean } {
    return { pgOk: this.confirmed.postgres, redisOk: this.confirmed.redis, pgCut: this.postgresDownMs(now) >= heartbeatTimeoutMs / 2 };
  }

  get postgresError(): string | undefined {
    return this.failures.postgres.message;
  }

  async beat(): Promise<void> {
    const d = this.d;
    const sentAt = d.clock.now();
    if (this.lastAttemptAt !== undefined && sentAt - this.lastAttemptAt > d.workerLeaseMs) {
      d.requireResync(sentAt, "heartbeat gap longer than the worker lease");
    }
    if (d.serving.leaseDeadline > 0 && !d.serving.leaseValid(sentAt) && !d.resyncing()) {
      // The worker has stopped (its lease ran out) and while we could not renew, the
      // leader may have declared us dead and moved our streams: re-read before serving.
      d.requireResync(sentAt, "worker lease lapsed");
    }
    this.lastAttemptAt = sentAt;
    const hb = d.build(sentAt);
    const [r, p] = await Promise.allSettled([d.sendRedis(hb), d.sendPostgres(hb)]);
    if (p.status === "fulfilled") this.deciderRedis = p.value.deciderRedis;
    const elsewhere = r.status === "fulfilled" && !countsForDeciders(r.value.incarnation, this.deciderRedis);
    this.confirmed = { redis: r.status === "fulfilled" && !elsewhere, postgres: p.status === "fulfilled" };
    if (this.confirmed.postgres) this.pgFailingSince = undefined;
    else this.pgFailingSince ??= sentAt;
    this.record(
      "redis",
      elsewhere
        ? { status: "rejected", reason: new Error(`the Redis that confirmed the heartbeat (incarnation ${r.value.incarnation}) is not the one the deciders read (${this.deciderRedis})`) }
        : r,
    );
    this.record("postgres", p);
    if (r.status === "fulfilled") {
      const reply = r.value;
      // Our record was gone, or Redis's clock saw us silent for HEARTBEAT_TIMEOUT (what
      // our key's expiry said when heartbeats had keys), although Redis kept its data
      // (same incarnation) and by our clock a beat was confirmed less than WORKER_LEASE
      // (< HEARTBEAT_TIMEOUT) ago. A longer silence or a new incarnation is covered by the
      // rules above and by the trackers' clock restart.
      const prev = this.lastConfirmed;
      if (!reply.existed && prev && prev.incarnation === reply.incarnation && sentAt - prev.at < d.workerLeaseMs) {
        d.requireResync(sentAt, "our heartbeat vanished from Redis, or Redis saw us silent, while we were live");
      }
      this.lastConfirmed = { at: sentAt, incarnation: reply.incarnation };
    }
    if (this.confirmed.redis || this.confirmed.postgres) {
      if (releasedSince(this.lastReportedHeld, hb.held)) d.onReleased();
      this.lastReportedHeld = hb.held;
    }
    // Another Redis's confirmation still renews when PostgreSQL confirmed this same beat:
    // the deciders see the beat there (this keeps `stop` serving while a restarted Redis's
    // new incarnation is not recorded yet).
    const renewable = { redis: r.status === "fulfilled" && (!elsewhere || this.confirmed.postgres), postgres: this.confirmed.postgres };
    if (!d.resyncing() && renews(d.policy, renewable)) d.serving.renew(sentAt);
    if (r.status === "fulfilled") d.onReply(r.value, hb);
    d.metrics.leaseRemaining.set(Math.max(0, d.serving.leaseDeadline - d.clock.now()) / 1000);
    d.metrics.streamsHeld.set(hb.held.length);
  }

  private record(channel: "redis" | "postgres", result: PromiseSettledResult<unknown>): void {
    this.d.metrics.heartbeats.inc({ channel, result: result.status === "fulfilled" ? "ok" : "failed" });
    if (result.status === "fulfilled") this.failures[channel].succeeded();
    else if (this.failures[channel].failed(result.reason)) {
      this.d.logger.warn({ err: result.reason, category: "ERROR", channel, policy: this.d.policy }, `heartbeat to ${channel === "redis" ? "Redis" : "PostgreSQL"} failed`);
    }
  }
}

/** Whether `before` holds an id `now` does not (`now` unchanged, the same array, is the common case). */
function releasedSince(before: readonly string[], now: readonly string[]): boolean {
  if (before === now || before.length === 0) return false;
  if (before.length === now.length && before.every((id, i) => id === now[i])) return false;
  const kept = new Set(now);
  return before.some((id) => !kept.has(id));
}
