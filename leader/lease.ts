/**
 * The leadership lease behind a small interface, so the Redis library can change and a
 * fake can stand in for unit tests.
 *
 * Implementation: Redlock 5.0.0-beta.2 over one or more Redis servers. We do NOT use
 * `redlock.using()`: after a lost lock it retries `extend` in a tight loop and throws
 * from its `finally`. Instead: `acquire([key], ttl, { retryCount: 0 })` once per attempt,
 * and `lock = await lock.extend(ttl)` per renewal (extend returns a NEW lock).
 * `retryCount: 0` also matters because beta.2 counts a lock's lifetime from the first
 * attempt, so a lock won after retries may already look expired.
 *
 * What the lease guarantees: while Redis keeps its data and clocks run at about the same
 * rate, at most one holder at a time. What it does NOT guarantee: that a holder which
 * paused (GC, SIGSTOP, a slow network) knows it lost the lease. That is why every leader
 * write is fenced by the epoch in Postgres (leader/store.ts).
 *
 * Time: redlock dates a lock on the wall clock (`lock.expiration`, from its own
 * Date.now()). We keep our own copy of that deadline on the injected monotonic clock,
 * computed the same way (attempt start + ttl − drift, the start taken just before
 * redlock's), and decide only on it.
 */
import Redlock, { Lock } from "redlock";
import type { Redis } from "ioredis";
import type { Clock } from "../shared/clock.js";

export interface Lease {
  /** One attempt. True when we now hold the lease for `ttlMs`. Never throws for contention or a dead Redis. */
  tryAcquire(ttlMs: number): Promise<boolean>;
  /** One attempt to extend a held lease. False when it was lost or could not be confirmed. */
  tryExtend(ttlMs: number): Promise<boolean>;
  /** Best effort: lets the next leader in without waiting for the TTL. */
  release(): Promise<void>;
  /** The token of the held lease (Redlock's random value), for fenced side-writes. */
  readonly token: string | undefined;
}

/** Redlock's default allowed clock drift: 1 % of the TTL plus 2 ms. We subtract it too. */
export function driftMs(ttlMs: number): number {
  return Math.round(ttlMs * 0.01) + 2;
}

export class RedlockLease implements Lease {
  private readonly redlock: Redlock;
  private lock: Lock | undefined;
  /** Monotonic time until which the held lock is valid: redlock's `expiration`, on our clock. */
  private validUntil = 0;

  constructor(
    clients: readonly Redis[],
    private readonly key: string,
    private readonly clock: Clock,
  ) {
    this.redlock = new Redlock(clients, { retryCount: 0, retryDelay: 0, retryJitter: 0, driftFactor: 0.01 });
    // Redlock emits "error" for per-client failures; they surface as failed attempts.
    this.redlock.on("error", () => {});
  }

  get token(): string | undefined {
    return this.lock?.value;
  }

  async tryAcquire(ttlMs: number): Promise<boolean> {
    const started = this.clock.now();
    try {
      this.lock = await this.redlock.acquire([this.key], ttlMs, { retryCount: 0 });
      this.validUntil = started + ttlMs - driftMs(ttlMs);
      return true;
    } catch {
      // ExecutionError: someone else holds it, or no quorum of Redis servers answered.
      this.lock = undefined;
      return false;
    }
  }

  async tryExtend(ttlMs: number): Promise<boolean> {
    const lock = this.lock;
    if (!lock) return false;
    const expiration = lock.expiration;
    const started = this.clock.now();
    try {
      this.lock = await lock.extend(ttlMs);
      this.validUntil = started + ttlMs - driftMs(ttlMs);
      return true;
    } catch {
      // Unconfirmed (a slow or unreachable Redis) or lost. extend() zeroed the old
      // handle's expiration; keep the same token with the expiration it had, so the next
      // attempt can still extend it while it may be ours. The extend script checks the
      // token, so a stolen lease simply keeps failing; once the expiration has passed,
      // redlock refuses to try and the elector steps down.
      this.lock = this.validUntil > this.clock.now() ? new Lock(this.redlock, lock.resources, lock.value, [], expiration) : undefined;
      return false;
    }
  }

  async release(): Promise<void> {
    const lock = this.lock;
    this.lock = undefined;
    if (!lock) return;
    try {
      await lock.release();
    } catch {
      // Not releasable (Redis down or already expired): the TTL frees it anyway.
    }
  }
}
