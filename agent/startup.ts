/**
 * How an agent joins: create or upgrade the schema, refuse to run beside a live twin,
 * take over the rows a previous process of this INSTANCE_ID left to its worker, and
 * register in PostgreSQL.
 *
 * Guarantees: while PostgreSQL or Redis cannot be reached, the sequence is retried with a
 * clear line (never a crash) until it succeeds or the agent closes; a live agent with the
 * same INSTANCE_ID stops it with DuplicateInstanceError, never retried. An orchestrated
 * agent reads its catalog copy (kept for a fallback to hashing) from half a FALLBACK_GRACE
 * after its start, or at once when it hashes (`catalogCopyWaitMs`). Does not: start any loop,
 * or subscribe (agent/agent.ts does, once this returns).
 */
import os from "node:os";
import type { Clock } from "../shared/clock.js";
import type { Config } from "../shared/config.js";
import type { Sql } from "../shared/db.js";
import type { Logger } from "../shared/logger.js";
import type { RedisProtocol } from "../shared/redis-protocol.js";
import { migrate } from "../shared/schema.js";
import type { Store } from "../shared/store.js";
import { SOFTWARE_VERSION, type Heartbeat, type Mode } from "../shared/types.js";
import type { WorkerLink } from "./worker-link.js";

export class DuplicateInstanceError extends Error {
  override readonly name = "DuplicateInstanceError";
}

export interface StartupDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sql: Sql;
  readonly store: Store;
  readonly protocol: RedisProtocol;
  readonly worker: Pick<WorkerLink, "inherit">;
  /** This process's session: its own heartbeats are no twin. */
  readonly session: string;
  readonly capacity: () => number;
  /** Aborted when the agent closes: stop retrying. */
  readonly signal: AbortSignal;
}

/** Migrates, checks for a twin, inherits the worker's rows and registers; retries until done. */
export async function join(d: StartupDeps): Promise<void> {
  const id = d.config.instanceId;
  // Postgres may not be up yet (compose, a restart): retry with a clear line, never crash.
  for (let attempt = 1; ; attempt++) {
    try {
      await migrate(d.sql, d.config.schema);
      await checkDuplicate(d);
      const before = await d.store.ownAssignment(id);
      // The worker may have outlived our previous process: it still holds those rows
      // (and its declared capacity) until it applies one of our answers.
      d.worker.inherit([...before.active.map((r) => r.id), ...before.revoking], before.declaredCapacity);
      await register(d.store, d.config, d.capacity());
      break;
    } catch (err) {
      if (err instanceof DuplicateInstanceError || d.signal.aborted) throw err;
      d.logger.warn({ err, attempt, category: "ERROR" }, "cannot reach PostgreSQL or Redis yet; retrying");
      await d.clock.sleep(Math.min(5000, 250 * attempt), d.signal);
    }
  }
}

/** Records this agent in the instances table (inserted, or refreshed if it is there). */
export async function register(store: Store, config: Config, capacity: number): Promise<void> {
  await store.register({ id: config.instanceId, capacity, software: SOFTWARE_VERSION, location: config.location, host: os.hostname() });
}

/**
 * Refuses to start beside a live agent with the same INSTANCE_ID: its heartbeats keep
 * coming (new feed entries under this id, by Redis's clock). A crashed predecessor's
 * stop: we take over its rows. So does one that announced it is leaving or restarting,
 * and nobody at all when no entry of this id is younger than a HEARTBEAT_TIMEOUT.
 */
export async function checkDuplicate(d: Pick<StartupDeps, "config" | "clock" | "protocol" | "session">): Promise<void> {
  const t = d.config.timings;
  const id = d.config.instanceId;
  const window = d.config.heartbeatTimeoutMs;
  const gone = (hb: Heartbeat | undefined) => !!hb && (hb.session === d.session || hb.leaving || hb.restarting);
  const a = await d.protocol.readMember(id, window);
  if (a.mark === undefined || a.silentMs === undefined || gone(a.heartbeat)) return;
  // Silent for more than a beat and a half: the predecessor crashed; take over.
  if (a.silentMs > t.duplicateSilentMs) return;
  await d.clock.sleep(t.duplicateWatchMs);
  // Unreadable now (Redis gone): nothing proves a live twin, start.
  const b = await d.protocol.readMember(id, window).catch(() => undefined);
  if (b?.mark !== undefined && b.mark !== a.mark && !gone(b.heartbeat)) {
    throw new DuplicateInstanceError(`Another agent with INSTANCE_ID=${id} is alive (heartbeating from ${b.heartbeat?.host ?? "an unknown host"}); refusing to start a second one.`);
  }
}

/**
 * How long before an agent reads its catalog copy (0: now). An orchestrated agent keeps the copy only
 * for a fallback to hashing, which comes after FALLBACK_GRACE without a leader at the
 * earliest (an operator's hashed flag switches it at once: `mode` says so), so it reads
 * the copy from half that grace after its start: a copy in hand, and watched for
 * HASH_SETTLE, long before any fallback, while a fleet starting together does not read
 * and hash the whole catalog once per agent while its processes compete for the CPU.
 * A hashing agent (USE_ORCHESTRATOR=false, or in hashed mode) reads it at once.
 */
export function catalogCopyWaitMs(o: { readonly useOrchestrator: boolean; readonly mode: Mode; readonly sinceStartMs: number; readonly fallbackGraceMs: number }): number {
  if (!o.useOrchestrator || o.mode === "hashed") return 0;
  return Math.max(0, o.fallbackGraceMs / 2 - o.sinceStartMs);
}
