/**
 * The heartbeat loop's one step, and the rule for renewing the worker's lease.
 *
 * Guarantees:
 * - The worker's lease is renewed from a heartbeat only when the heartbeat was confirmed
 *   (timed from before it was sent), never while the agent is withdrawn for a resync.
 * - Under ON_COORDINATION_LOSS=keep a failed heartbeat renews only while Redis is clearly
 *   down (refused, closed, the client reconnecting): see renewsOnFailure.
 * - A gap between two attempts longer than the worker's lease (a freeze: SIGSTOP, a
 *   stalled VM, starvation), a lease that ran out, or our heartbeat key found gone while
 *   we were live (deleted or evicted: trackers may have seen us absent) triggers a resync
 *   before anything is served again.
 * It does not decide what is offered (agent/offer.ts) nor who is alive (the tracker).
 */
import type { Clock } from "../shared/clock.js";
import type { CoordinationLossPolicy } from "../shared/config.js";
import { FailureMemo, type Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import type { HeartbeatReply } from "../shared/redis-protocol.js";
import type { Heartbeat } from "../shared/types.js";
import type { Serving } from "./serving.js";

export type { HeartbeatReply };

/**
 * ON_COORDINATION_LOSS=keep: whether a FAILED heartbeat may still renew the worker's
 * lease. Only for a Redis that is clearly down: a command that timed out on a connection
 * still up may mean this process is starved or the network drops packets while the
 * leader still reaches Redis and will move our streams, so that never renews.
 */
export function renewsOnFailure(policy: CoordinationLossPolicy, message: string, connection: string): boolean {
  if (policy !== "keep") return false;
  const timedOutOnLiveConnection = /timed? ?out/i.test(message) && connection === "ready";
  return !timedOutOnLiveConnection;
}

/** The minimal interface the heartbeat loop needs from the agent around it. */
export interface HeartbeatDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly serving: Pick<Serving, "renew" | "leaseDeadline" | "leaseValid">;
  readonly workerLeaseMs: number;
  readonly policy: CoordinationLossPolicy;
  /** Writes the heartbeat; throws when it was not confirmed. */
  send(hb: Heartbeat): Promise<HeartbeatReply>;
  /** The Redis client's connection state ("ready", "reconnecting", "end", …). */
  connection(): string;
  build(now: number): Heartbeat;
  resyncing(): boolean;
  requireResync(now: number, why: string): void;
  onReply(reply: HeartbeatReply, hb: Heartbeat): void;
  /** The worker let go of something since the last beat: the leader may be waiting on it. */
  onReleased(): void;
}

export class HeartbeatLoop {
  private lastAttemptAt: number | undefined;
  private ok = false;
  private readonly failure = new FailureMemo();
  private lastReportedHeld: readonly string[] = [];
  private lastConfirmed: { at: number; incarnation: string } | undefined;

  constructor(private readonly d: HeartbeatDeps) {}

  get healthy(): boolean {
    return this.ok;
  }

  get error(): string | undefined {
    return this.failure.message;
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
    try {
      const reply = await d.send(hb);
      // Our key was gone although Redis kept its data (same incarnation) and a beat
      // confirmed less than WORKER_LEASE ago (< HEARTBEAT_TIMEOUT, its TTL) should have
      // kept it. A longer silence or a new incarnation is covered by the rules above and
      // by the trackers' clock restart.
      const prev = this.lastConfirmed;
      if (!reply.existed && prev && prev.incarnation === reply.incarnation && sentAt - prev.at < d.workerLeaseMs) {
        d.requireResync(sentAt, "our heartbeat key vanished from Redis while we were live");
      }
      this.lastConfirmed = { at: sentAt, incarnation: reply.incarnation };
      this.ok = true;
      this.failure.succeeded();
      d.metrics.heartbeats.inc({ result: "ok" });
      if (this.lastReportedHeld.some((id) => !hb.held.includes(id))) d.onReleased();
      this.lastReportedHeld = hb.held;
      if (!d.resyncing()) d.serving.renew(sentAt);
      d.onReply(reply, hb);
    } catch (err) {
      this.ok = false;
      d.metrics.heartbeats.inc({ result: "failed" });
      if (this.failure.failed(err)) d.logger.warn({ err, category: "ERROR", policy: d.policy }, "heartbeat failed");
      if (!d.resyncing() && renewsOnFailure(d.policy, this.failure.message ?? "", d.connection())) d.serving.renew(sentAt);
    }
    d.metrics.leaseRemaining.set(Math.max(0, d.serving.leaseDeadline - d.clock.now()) / 1000);
    d.metrics.streamsHeld.set(hb.held.length);
  }
}
