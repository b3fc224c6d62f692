/**
 * Time, injected. Only this module touches the system clock and timers, so tests can
 * move time forward instead of sleeping and many agents can share one process.
 *
 * `now()` is MONOTONIC milliseconds (it never jumps with NTP and it keeps counting while
 * the process is stopped by SIGSTOP, which is exactly what lease arithmetic needs).
 * `wall()` is the wall clock, for timestamps shown to people and stored in rows; never
 * use it to decide anything about safety.
 */
export interface Clock {
  now(): number;
  wall(): number;
  /** Resolves after `ms`, or rejects with an AbortError as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export class AbortError extends Error {
  override readonly name = "AbortError";
  constructor(message = "aborted", options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The reason given when a controller only cancels a wait (its timer is no longer
 * needed): abort() without one builds a DOMException, stack included, and the loops
 * cancel a timer at every tick, heartbeat, renewal and deadline.
 */
export const CANCELLED = "cancelled";

/** Cancels the waits on `ctl`'s signal (see CANCELLED). */
export function cancel(ctl: AbortController): void {
  ctl.abort(CANCELLED);
}

/**
 * The error a cut-short sleep rejects with: no stack (it would only name the listener
 * that aborted, and capturing it cost more than the rest of a cancelled wait).
 */
function sleepAborted(): AbortError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new AbortError();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === "AbortError";
}

const origin = Date.now() - performance.now();

export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => origin + performance.now(),
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(sleepAborted());
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, Math.max(0, ms));
      const onAbort = () => {
        clearTimeout(timer);
        reject(sleepAborted());
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};

/**
 * A clock for tests only: time moves when the test says so. Sleepers wake in deadline
 * order as `advance()` passes their deadlines.
 */
export class ManualClock implements Clock {
  private t: number;
  private readonly wallOffset: number;
  private sleepers: { at: number; resolve: () => void }[] = [];

  constructor(start = 1_000, wallStart = Date.UTC(2026, 0, 1)) {
    this.t = start;
    this.wallOffset = wallStart - start;
  }

  now(): number {
    return this.t;
  }

  wall(): number {
    return this.t + this.wallOffset;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(sleepAborted());
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((s) => s !== entry);
        reject(sleepAborted());
      };
      // A sleep that ends leaves no listener on the signal (a loop's signal outlives many sleeps).
      const entry = {
        at: this.t + Math.max(0, ms),
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      this.sleepers.push(entry);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Moves time forward by `ms`, waking every sleeper whose deadline has passed. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      this.sleepers.sort((a, b) => a.at - b.at);
      const next = this.sleepers[0];
      if (!next || next.at > target) break;
      this.sleepers.shift();
      this.t = Math.max(this.t, next.at);
      next.resolve();
      // Let the woken task run before waking the next one.
      await new Promise((r) => setImmediate(r));
    }
    this.t = target;
  }
}

/**
 * A sleep that can be cut short: `wake()` ends the current (or next) sleep at once, and
 * the owner's signal ends it for good. One per loop; the loop sleeps through `sleep()`.
 */
export class Waker {
  private ctl: AbortController | undefined;
  private pending = false;

  constructor(
    private readonly clock: Clock,
    private readonly signal: AbortSignal,
  ) {}

  /** Ends the current sleep now (or the next one at once, if none is running). */
  wake(): void {
    if (this.ctl) cancel(this.ctl);
    else this.pending = true;
  }

  /** Sleeps `ms` unless woken; never throws. Returns true when it was woken early. */
  async sleep(ms: number): Promise<boolean> {
    if (this.signal.aborted) return false;
    if (this.pending) {
      this.pending = false;
      return true;
    }
    const ctl = new AbortController();
    const onAbort = () => cancel(ctl);
    this.signal.addEventListener("abort", onAbort, { once: true });
    this.ctl = ctl;
    try {
      await this.clock.sleep(ms, ctl.signal);
      return false;
    } catch {
      return !this.signal.aborted;
    } finally {
      this.ctl = undefined;
      this.signal.removeEventListener("abort", onAbort);
    }
  }
}
