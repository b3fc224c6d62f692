/**
 * The intervals the agent and the leader derive from the settings: computed and checked
 * here, once, and carried on the Config as `timings` (shared/config.ts calls
 * `deriveTimings` then `checkTimings`). Pure arithmetic: no I/O, no clock.
 *
 * Guarantees: every derived interval keeps the rules `checkTimings` lists, for every
 * setting loadConfig accepts. Does not: read settings or report bad ones (that is
 * loadConfig's ConfigError); a broken rule here is a bug, thrown as a plain Error.
 */

/** The settings the timings follow from (a Config provides them). */
export interface TimingSettings {
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly leaderLeaseTtlMs: number;
  readonly fallbackGraceMs: number;
  readonly hashSettleMs: number;
  readonly catalogRefreshMs: number;
  readonly workerLeaseMs: number;
  readonly streamHealth: { readonly failoverAfterMs: number };
}

/**
 * Every interval the agent and the leader derive from the settings, in milliseconds.
 * Each one is a consequence of a setting, never a setting itself; they live here so that
 * the rules between them are checked in one place.
 */
export interface Timings {
  /** How often the leader renews its lease (a fifth of LEADER_LEASE_TTL: four retries fit in one TTL). */
  readonly electorRenewMs: number;
  /** How often a follower that may take the lease tries (half a heartbeat); one that sees a live leader waits for news instead (leader/elector.ts). */
  readonly electorRetryMs: number;
  /** How often the leader ticks when nothing nudges it (half a heartbeat). */
  readonly leaderTickMs: number;
  /** How often the leader re-publishes who leads (as often as it renews). */
  readonly leaderInfoPublishMs: number;
  /**
   * A leader that has not completed a tick for this long (LEADER_LEASE_TTL) while other
   * members reach PostgreSQL steps aside, and stays a follower for leaderHoldOffMs (two
   * TTLs) so one of them takes over.
   */
  readonly leaderStallMs: number;
  readonly leaderHoldOffMs: number;
  /** Redis command timeout of the heartbeat and lease clients: under one heartbeat, 0.2–1 s. */
  readonly redisCommandTimeoutMs: number;
  /** How long a heartbeat write to PostgreSQL may take before it counts as unconfirmed. */
  readonly heartbeatWriteTimeoutMs: number;
  /** How long the tracker waits for the PostgreSQL heartbeats before counting that channel unread. */
  readonly heartbeatReadTimeoutMs: number;
  /** PostgreSQL connect timeout, whole seconds: HEARTBEAT_TIMEOUT rounded up. */
  readonly postgresConnectTimeoutS: number;
  /**
   * PostgreSQL ends a session of the agent's main pool (the leader's fenced writes) that
   * sits idle inside a transaction this long (LEADER_LEASE_TTL, at least 1 s;
   * idle_in_transaction_session_timeout). An agent sends a transaction's statements one
   * after another (a transaction's callback awaits nothing but its own statements), so
   * only a client that is gone, cut off or frozen stays idle that long; meanwhile its
   * transaction holds its locks, and a leader's fenced write holds the leadership row,
   * which the next leader's epoch bump must update. PostgreSQL
   * cannot tell a silent client from a slow one, so without this a leader cut off inside
   * a write held every successor off until the link healed.
   */
  readonly postgresIdleInTransactionMs: number;
  /** A gap between two membership reads longer than this means nobody was watching: clocks restart. */
  readonly trackerMaxGapMs: number;
  /**
   * An orchestrated agent that has seen no ready leader for this long starts reading the
   * whole membership (agent/beliefs.ts `decides`): HEARTBEAT_TIMEOUT, HASH_SETTLE and one
   * interval before its fallback to hashing (FALLBACK_GRACE), so that when the grace ends
   * a member that died with the leader is already dead in its view (its first whole read
   * comes within the interval; the member's clock starts there) and that member's
   * streams have settled on their new hashing owner, who takes them at once, as when
   * every agent without a ready leader read the whole membership; 0 (at once) when
   * FALLBACK_GRACE is not longer than those three. Until then it watches the leader alone, as with a leader: an
   * ordinary leader change (a new leader ready within seconds) no longer makes every
   * follower read every member's heartbeats on both channels, work that grows with the
   * square of the fleet's size.
   */
  readonly wholeViewLeaderlessMs: number;
  /** A membership view older than this is too stale to decide anything from (3 heartbeats). */
  readonly maxViewAgeMs: number;
  /** How often an agent re-reads its own rows when no nudge arrives. */
  readonly ownRowsReloadMs: number;
  /** How old a cached catalog may be for hashing (CATALOG_REFRESH) and, orchestrated, as a fallback copy. */
  readonly catalogMaxAgeHashedMs: number;
  readonly catalogMaxAgeOrchestratedMs: number;
  /** A long-poll waits at most this long: a third of the lease, so the worker renews in time. */
  readonly longPollCapMs: number;
  /** An INSTANCE_ID whose heartbeats stopped this long ago at start belongs to a crashed predecessor (1.5 heartbeats). */
  readonly duplicateSilentMs: number;
  /** How long a starting agent watches a live-looking INSTANCE_ID for progress before refusing to start. */
  readonly duplicateWatchMs: number;
  /** Members gone (left or dead, owning nothing) for this long are forgotten by the leader. */
  readonly memberForgetMs: number;
  /** How often the leader saves per-member statistics and prunes old events. */
  readonly statsSaveMs: number;
  readonly eventPruneMs: number;
  /**
   * A worker whose streams mostly fail is degraded once that has lasted this long: half of
   * STREAM_FAILOVER_AFTER, at most 30 s, so a dead VPN exit is seen as the worker's fault
   * before any of its streams is charged.
   */
  readonly degradeAfterMs: number;
  /** A worker degraded by failures gets streams again after this long without a success (5 × STREAM_FAILOVER_AFTER). */
  readonly degradedHoldMs: number;
  /** Only outcomes this recent count towards a worker being degraded (2 × STREAM_FAILOVER_AFTER, at least a minute). */
  readonly outcomeWindowMs: number;
  /** An unchanged outcome is written again at most this often (a failure's last error, a success's time). */
  readonly outcomeRewriteMs: number;
}

export function deriveTimings(c: TimingSettings): Timings {
  const hb = c.heartbeatIntervalMs;
  return {
    electorRenewMs: Math.max(50, Math.round(c.leaderLeaseTtlMs / 5)),
    electorRetryMs: Math.max(50, Math.round(hb / 2)),
    leaderTickMs: Math.max(50, Math.round(hb / 2)),
    leaderInfoPublishMs: Math.max(50, Math.round(c.leaderLeaseTtlMs / 5)),
    leaderStallMs: c.leaderLeaseTtlMs,
    leaderHoldOffMs: 2 * c.leaderLeaseTtlMs,
    redisCommandTimeoutMs: Math.max(200, Math.min(1000, Math.round(hb * 0.8))),
    heartbeatWriteTimeoutMs: Math.max(200, Math.min(1000, Math.round(hb * 0.8))),
    heartbeatReadTimeoutMs: Math.max(1000, hb),
    postgresConnectTimeoutS: Math.max(1, Math.ceil(c.heartbeatTimeoutMs / 1000)),
    postgresIdleInTransactionMs: Math.max(1000, c.leaderLeaseTtlMs),
    trackerMaxGapMs: Math.max(2 * hb, hb + 1000),
    wholeViewLeaderlessMs: Math.max(0, c.fallbackGraceMs - c.heartbeatTimeoutMs - c.hashSettleMs - hb),
    maxViewAgeMs: 3 * hb,
    ownRowsReloadMs: Math.min(c.catalogRefreshMs, 5000),
    catalogMaxAgeHashedMs: c.catalogRefreshMs,
    catalogMaxAgeOrchestratedMs: 6 * c.catalogRefreshMs,
    longPollCapMs: Math.max(100, Math.floor(c.workerLeaseMs / 3)),
    duplicateSilentMs: Math.round(1.5 * hb),
    duplicateWatchMs: Math.round(2.5 * hb),
    memberForgetMs: Math.max(60_000, 10 * c.heartbeatTimeoutMs),
    statsSaveMs: 10_000,
    eventPruneMs: 10 * 60_000,
    degradeAfterMs: Math.min(30_000, Math.round(c.streamHealth.failoverAfterMs / 2)),
    degradedHoldMs: 5 * c.streamHealth.failoverAfterMs,
    outcomeWindowMs: Math.max(60_000, 2 * c.streamHealth.failoverAfterMs),
    outcomeRewriteMs: 30_000,
  };
}

/**
 * The derived intervals must keep the rules the safety model leans on. They follow from
 * loadConfig's checks across settings (shared/config.ts) for every accepted setting; a
 * failure here is a bug in deriveTimings, so it is an Error, not a ConfigError.
 */
export function checkTimings(c: TimingSettings, t: Timings): void {
  const broken = (rule: string) => new Error(`derived timings break a rule: ${rule}`);
  if (t.longPollCapMs >= c.workerLeaseMs) throw broken("a long-poll must end before the worker's lease");
  if (t.electorRenewMs >= c.leaderLeaseTtlMs) throw broken("the leader must renew before its lease ends");
  if (t.redisCommandTimeoutMs > Math.max(200, c.heartbeatIntervalMs)) throw broken("a heartbeat must time out within one interval");
  if (t.degradeAfterMs >= c.streamHealth.failoverAfterMs) throw broken("a degraded worker must be seen before its streams are charged");
  if (t.trackerMaxGapMs >= c.heartbeatTimeoutMs + c.heartbeatIntervalMs + 1000) throw broken("a read gap must be noticed before a member could be called dead");
  if (t.wholeViewLeaderlessMs > 0 && t.wholeViewLeaderlessMs + c.heartbeatTimeoutMs + c.hashSettleMs + c.heartbeatIntervalMs > c.fallbackGraceMs) throw broken("a fallback to hashing must come after a whole view watched for a timeout and a settle");
}
