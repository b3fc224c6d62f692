/**
 * The graceful exit, bounded by DRAIN_TIMEOUT.
 * SHUTDOWN_DRAIN=true: stop taking streams and hand off what we hold (the leader moves
 * them, or hashing peers take them), then say goodbye.
 * SHUTDOWN_DRAIN=false (a restart): withdraw the worker and exit; the rows stay ours
 * for HEARTBEAT_TIMEOUT, so the same INSTANCE_ID coming back moves nothing.
 *
 * Guarantees: the worker is told to stop (an empty list) before the goodbye heartbeat,
 * and the lease is released if held; every wait ends by the deadline. Does not: close
 * any component (Agent.close does, afterwards), or wait past DRAIN_TIMEOUT for a
 * worker that never confirms.
 */
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { Serving } from "./serving.js";

/** How often a shutdown checks whether its streams are gone. */
const SHUTDOWN_POLL_MS = 50;

export interface ExitDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly drainTimeoutMs: number;
  readonly shutdownDrain: boolean;
  /** Aborted when the agent closes: stop waiting for the leader. */
  readonly signal: AbortSignal;
  readonly serving: Pick<Serving, "held" | "setListed">;
  /** Marks the agent as leaving (hand off) or restarting (keep the membership); the heartbeat says so. */
  readonly announce: (how: "leaving" | "restarting") => void;
  readonly wakeHeartbeat: () => void;
  /** An orchestrating leader is ready to move our rows away. */
  readonly leaderMovesRows: () => boolean;
  /** Rows the leader has not moved away yet (active or revoking). */
  readonly rowsLeft: () => number;
  readonly beat: () => Promise<unknown>;
  readonly isLeader: () => boolean;
  readonly resign: () => Promise<void>;
}

export async function exitGracefully(d: ExitDeps): Promise<void> {
  const { clock, serving } = d;
  const log = d.logger.child({ category: "INSTANCE" });
  const deadline = clock.now() + d.drainTimeoutMs;
  const pause = () => clock.sleep(SHUTDOWN_POLL_MS).catch(() => {});
  if (d.shutdownDrain) {
    d.announce("leaving");
    log.info({ held: serving.held().length }, "draining before exit");
    d.wakeHeartbeat();
    // Orchestrated: wait until the leader moved our rows away. Hashed: release at once.
    while (clock.now() < deadline && !d.signal.aborted) {
      if (!d.leaderMovesRows() || d.rowsLeft() === 0) break;
      await pause();
    }
  } else {
    d.announce("restarting");
    log.info({ held: serving.held().length }, "exiting for a restart: keeping the membership, withdrawing the worker");
  }
  serving.setListed([]);
  // Wait for the worker to confirm the empty list (or for its lease to run out).
  while (clock.now() < deadline && serving.held().length > 0) await pause();
  await d.beat().catch(() => {}); // the goodbye: holding nothing
  if (d.isLeader()) await d.resign();
  log.info({ held: serving.held().length }, d.shutdownDrain ? "handed off; exiting" : "withdrawn; exiting");
}
