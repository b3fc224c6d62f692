/**
 * The agent's periodic loops (heartbeat, tracker, own rows, catalog): one step, then a
 * sleep that a Waker can cut short, until the agent closes.
 *
 * Guarantees: a failing step is retried after the next sleep and logged only when its
 * error differs from the previous one (FailureMemo); an abort ends the loop without a
 * log line; the promise never rejects. Does not: run two steps of one loop at once, or catch up on
 * periods missed while a step ran.
 */
import { Waker, isAbortError, type Clock } from "../shared/clock.js";
import { FailureMemo, type Logger } from "../shared/logger.js";

export interface LoopContext {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Aborted when the agent closes. */
  readonly signal: AbortSignal;
}

export function repeat(ctx: LoopContext, name: string, everyMs: number, step: () => Promise<unknown>, waker?: Waker): Promise<void> {
  const { signal } = ctx;
  const log = ctx.logger.child({ component: name });
  const sleeper = waker ?? new Waker(ctx.clock, signal);
  return (async () => {
    const failure = new FailureMemo();
    while (!signal.aborted) {
      try {
        await step();
        failure.succeeded();
      } catch (err) {
        if (signal.aborted || isAbortError(err)) break;
        if (failure.failed(err)) log.warn({ err, category: "ERROR" }, `${name} step failed`);
      }
      await sleeper.sleep(everyMs);
    }
  })();
}
