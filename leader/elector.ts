/**
 * Leader election in the shape of client-go's leaderelection: two states (follower,
 * leader), one core step (`tryAcquireOrRenew`), and loops around it.
 *
 * Safety model, stated plainly: this elector does NOT fence. It makes it very likely that
 * one agent leads at a time and that a leader stops acting before its lease can have
 * expired, judged by its own monotonic clock. A leader that was paused longer than the
 * TTL can still wake up believing it leads for a moment; the fencing epoch in Postgres
 * (leader/store.ts) is what makes its writes fail.
 *
 * Timing (all on the injected clock, never on timestamps written by others):
 * - a successful attempt started at t0 makes the lease valid until t0 + ttl − drift;
 * - the leader renews every `renewIntervalMs`; a failed renewal is retried at the next
 *   interval, and it steps down at validUntil − margin if renewals keep failing
 *   (margin = one renew interval), so its work is aborted before the lease can have
 *   expired in Redis;
 * - followers try every `retryIntervalMs` while `acquireInMs` says they may, and not at
 *   all otherwise: they sleep until the time it gives or until `poke()` (the agent pokes
 *   at each heartbeat reply, the news that can change it), so a follower that sees a live
 *   leader has no timer of its own.
 *
 * Why a follower may wait while a leader is named (agent/beliefs.ts: acquireInMs is above
 * 0 only while this agent's latest heartbeat reply, younger than three heartbeats, names a
 * LIVE leader): the named info cannot outlive the lease by more than a bounded moment, so
 * a lease that is free is always tried soon after. The leader writes its info only while
 * its token holds the lease (PUBLISH_LEADER checks the token in the same script), with the
 * lease key's remaining TTL, every TTL/5 and at each tick, and clears it when it stops
 * leading (CLEAR_LEADER). A follower counts the info as live for that remaining TTL from
 * when it saw it change (shared/leader-watch.ts, on its own clock): a leader that lost its
 * lease changes nothing any more, so the info goes absent no later than the lease key
 * expires plus the follower's delay in seeing the last change (about one heartbeat
 * interval and a reply's latency), and its next heartbeat reply says so. The only Redis time in it is the lease key's own
 * remaining TTL, so a step of Redis's clock stretches the info no more than the lease key
 * itself (README, "Redis's own clock"). A follower whose replies stopped coming (Redis
 * unreachable from it) tries anyway. A leader of the version before the cluster hash names itself only in
 * the old info key, which expires with the lease's TTL.
 */
import type { Clock } from "../shared/clock.js";
import { Waker, cancel, isAbortError } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import { driftMs, type Lease } from "./lease.js";

export interface ElectorOptions {
  readonly id: string;
  readonly lease: Lease;
  readonly clock: Clock;
  readonly logger: Logger;
  /** LEADER_LEASE_TTL in ms. */
  readonly ttlMs: number;
  /** How often the leader extends; must leave several renewals per TTL. */
  readonly renewIntervalMs: number;
  /** How often a follower tries to acquire. */
  readonly retryIntervalMs: number;
  /**
   * When a follower may try to take the lease: 0 now (the default: always), else in how
   * many ms at the earliest by time alone, unless poke() brings news first. A follower
   * that sees a live leader in its heartbeat replies makes no attempt (see the header).
   */
  readonly acquireInMs?: () => number;
  /** Runs while leading; `signal` aborts the moment leadership is lost or the elector closes. */
  readonly onStartedLeading: (signal: AbortSignal) => void;
  readonly onStoppedLeading?: (reason: string) => void;
}

export type ElectorState = "follower" | "leader";

export class Elector {
  private state: ElectorState = "follower";
  private validUntil = 0;
  private lastRenewAt = 0;
  private leading: AbortController | undefined;
  private readonly closing = new AbortController();
  private loop: Promise<void> | undefined;
  private watchdog: Promise<void> | undefined;
  private watchdogAbort: AbortController | undefined;
  private holdOffUntil = 0;
  /** A follower's sleep, cut short by poke(). */
  private readonly wait: Waker;
  elections = 0;

  constructor(private readonly o: ElectorOptions) {
    this.wait = new Waker(o.clock, this.closing.signal);
    if (o.renewIntervalMs * 2 > o.ttlMs) {
      throw new Error(`renew interval ${o.renewIntervalMs} ms must be at most half the lease TTL ${o.ttlMs} ms`);
    }
  }

  /** True only while the lease is held AND cannot have expired by our own clock. */
  isLeader(): boolean {
    return this.state === "leader" && this.o.clock.now() < this.validUntil - this.margin();
  }

  get currentState(): ElectorState {
    return this.state;
  }

  /** client-go's health check: unhealthy when we think we lead but have not renewed in time. */
  healthy(): boolean {
    if (this.state !== "leader") return true;
    return this.o.clock.now() - this.lastRenewAt <= this.o.ttlMs - this.margin();
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run();
  }

  /** Stops trying, stops leading and releases the lease. Idempotent. */
  async close(): Promise<void> {
    if (!this.closing.signal.aborted) this.closing.abort();
    await this.loop;
    this.stopLeading("closing");
    await this.o.lease.release();
  }

  /**
   * Gives up leadership and stays a follower for `holdOffMs`: a leader that cannot do its
   * work (PostgreSQL unreachable from here) lets a member that can take over.
   */
  async stepAside(holdOffMs: number, reason: string): Promise<void> {
    this.holdOffUntil = this.o.clock.now() + holdOffMs;
    if (this.state !== "leader") return;
    this.stopLeading(reason);
    await this.o.lease.release();
  }

  /** Gives up leadership now (SIGTERM, operator), releasing the lease for a fast handover. */
  async resign(): Promise<void> {
    if (this.state !== "leader") return;
    this.stopLeading("resigned");
    await this.o.lease.release();
  }

  private margin(): number {
    return this.o.renewIntervalMs;
  }

  /** News that may let a follower try the lease (a heartbeat reply): it checks at once. */
  poke(): void {
    if (this.state !== "leader") this.wait.wake();
  }

  private async run(): Promise<void> {
    const signal = this.closing.signal;
    while (!signal.aborted) {
      const ms = this.state === "leader" ? await this.renew() : await this.follow();
      // A leader's renewals keep their cadence; only a follower's sleep is cut short by poke().
      if (this.state !== "leader") await this.wait.sleep(ms);
      else await this.o.clock.sleep(ms, signal).catch((err: unknown) => {
        if (!isAbortError(err)) throw err;
      });
    }
  }

  /** A leader's step: renews. Returns how long to sleep. */
  private async renew(): Promise<number> {
    await this.tryAcquireOrRenew();
    return this.state === "leader" ? this.o.renewIntervalMs : this.o.retryIntervalMs;
  }

  /** A follower's step: tries the lease when it may. Returns how long to sleep. */
  private async follow(): Promise<number> {
    const heldOff = this.holdOffUntil - this.o.clock.now();
    if (heldOff > 0) return heldOff;
    const inMs = this.o.acquireInMs?.() ?? 0;
    if (inMs > 0) return inMs;
    await this.tryAcquireOrRenew();
    return this.state === "leader" ? this.o.renewIntervalMs : this.o.retryIntervalMs;
  }

  /** The one core step. Returns whether we lead after it. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    // 1. Note the time BEFORE talking to Redis: the lease runs from when we asked, not
    //    from when the answer arrived.
    const started = this.o.clock.now();
    const wasLeader = this.state === "leader";
    // 2. Extend what we hold, or try to take it.
    const ok = wasLeader ? await this.o.lease.tryExtend(this.o.ttlMs) : await this.o.lease.tryAcquire(this.o.ttlMs);
    if (this.closing.signal.aborted) return false;
    if (!ok) {
      // 3. A failed renewal: keep trying until the lease could have expired by our own
      //    clock (client-go's renewDeadline), then step down. One slow Redis answer must
      //    not cost the fleet its leader; the watchdog aborts the leader's work in time.
      if (wasLeader && this.o.clock.now() >= this.validUntil - this.margin()) {
        this.stopLeading("renewal failed");
        await this.o.lease.release();
      }
      return wasLeader && this.state === "leader";
    }
    // 4. Success: the lease is ours until started + ttl − drift, by our clock.
    this.validUntil = started + this.o.ttlMs - driftMs(this.o.ttlMs);
    this.lastRenewAt = started;
    if (this.validUntil - this.margin() <= this.o.clock.now()) {
      // The answer came so late the lease is already (nearly) gone: do not lead on it.
      if (wasLeader) this.stopLeading("renewal too slow");
      await this.o.lease.release();
      return false;
    }
    if (!wasLeader) this.startLeading();
    this.armWatchdog();
    return true;
  }

  private startLeading(): void {
    this.state = "leader";
    this.elections++;
    this.leading = new AbortController();
    this.o.logger.info({ category: "INSTANCE", event: "leader.started" }, "became leader");
    try {
      this.o.onStartedLeading(this.leading.signal);
    } catch (err) {
      this.o.logger.error({ err, category: "ERROR" }, "leader start hook failed");
      this.stopLeading("start hook failed");
    }
  }

  private stopLeading(reason: string): void {
    if (this.watchdogAbort) cancel(this.watchdogAbort);
    if (this.state !== "leader") return;
    this.state = "follower";
    this.validUntil = 0;
    this.leading?.abort();
    this.leading = undefined;
    this.o.logger.info({ category: "INSTANCE", event: "leader.stopped", reason }, "stopped leading");
    this.o.onStoppedLeading?.(reason);
  }

  /** Aborts leadership at validUntil − margin unless a renewal re-arms it first. */
  private armWatchdog(): void {
    if (this.watchdogAbort) cancel(this.watchdogAbort);
    const ctl = new AbortController();
    this.watchdogAbort = ctl;
    const wait = this.validUntil - this.margin() - this.o.clock.now();
    this.watchdog = this.o.clock.sleep(wait, ctl.signal).then(
      () => {
        if (this.watchdogAbort === ctl && this.state === "leader") this.stopLeading("lease deadline passed");
      },
      () => {
        // Re-armed or closed: nothing to do.
      },
    );
  }
}
