/**
 * Every setting the agent reads, in one place: `loadConfig(env)` → a frozen Config.
 * Nothing else in the project reads `process.env`.
 *
 * Durations are given in SECONDS (decimals allowed, e.g. 0.2) and stored in milliseconds.
 * Names from the original operator documents keep working as aliases; when both a name
 * and its alias are set, the name wins (INSTANCE_ID over SERVER_ID, and so on).
 *
 * A bad value throws ConfigError whose message is ONE line naming the setting, the value
 * and what was expected; main.ts prints it and exits before anything starts.
 *
 * Beside this file: shared/config-values.ts reads and checks one value (and defines
 * ConfigError), shared/config-redis.ts reads the Redis and Sentinel settings, and
 * shared/timings.ts derives and checks the intervals that follow from the settings.
 */
import os from "node:os";
import { redisSentinel, redisUrls, type RedisSentinelConfig } from "./config-redis.js";
import { bad, boolean, cidrs, ConfigError, integer, matching, oneOf, pick, ratio, redactUrl, seconds, url, type Env } from "./config-values.js";
import { LABELS_RULE, parseLabels, type Labels } from "./labels.js";
import { checkTimings, deriveTimings, type Timings } from "./timings.js";

export { ConfigError, redactUrl } from "./config-values.js";
export type { RedisSentinelConfig } from "./config-redis.js";
export type { Timings } from "./timings.js";

export interface StreamHealthSettings {
  /** STREAM_FAILOVER_AFTER: a stream failing continuously on its worker this long moves. */
  readonly failoverAfterMs: number;
  /** STREAM_FAILURE_MEMORY: a stream is never placed back on a worker it failed on this recently. */
  readonly failureMemoryMs: number;
  /** STREAM_QUARANTINE_AFTER: failed on this many distinct workers in a row → quarantined. */
  readonly quarantineAfter: number;
  /** STREAM_QUARANTINE_RETRY: a quarantined stream is tried on one worker this often (doubling, up to the memory). */
  readonly quarantineRetryMs: number;
  /** STREAM_FAILOVER_BUDGET: failure-driven moves (failing, quarantined, worker-degraded) per minute. */
  readonly failoverBudgetPerMinute: number;
}

export type CoordinationLossPolicy = "keep" | "stop";
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export interface Config {
  /** This agent's identity in the cluster; the worker beside it is known by the same id. */
  readonly instanceId: string;
  /** How many streams the worker beside this agent may process. 0 = takes none. */
  readonly maxStreams: number;
  readonly databaseUrl: string;
  /** Postgres schema that holds the orchestrator's own tables. */
  readonly schema: string;
  /** The operator's catalog table, possibly schema-qualified; read, never written. */
  readonly streamsTable: { readonly schema?: string; readonly name: string };
  readonly streamsIdColumn: string;
  /** One URL, or several for a Redlock quorum; the FIRST one also carries heartbeats. Unused with sentinels. */
  readonly redisUrls: readonly string[];
  /** Redis under Sentinel (REDIS_SENTINELS): every client asks the sentinels for the master. */
  readonly redisSentinel: RedisSentinelConfig | undefined;
  readonly redisKeyPrefix: string;
  /** This agent's own switch: false keeps it on hashing whatever the cluster flag says. */
  readonly useOrchestrator: boolean;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly heartbeatWarningMs: number;
  /** How long a worker may keep serving after its agent last confirmed a heartbeat. */
  readonly workerLeaseMs: number;
  readonly leaderLeaseTtlMs: number;
  /** With no leader for this long, agents fall back to hashing. */
  readonly fallbackGraceMs: number;
  /** In hashing mode, how long a membership view must be stable before taking new streams. */
  readonly hashSettleMs: number;
  readonly imbalanceThreshold: number;
  readonly maxStreamDifference: number;
  readonly rebalanceCooldownMs: number;
  readonly catalogRefreshMs: number;
  /** A worker silent (no fetch, no report) for this long is reported unhealthy. */
  readonly workerTimeoutMs: number;
  /** SIGTERM: how long to wait for the streams to be handed off before exiting anyway. */
  readonly drainTimeoutMs: number;
  /**
   * SIGTERM hands the streams off (true, default: no gap, they move), or only withdraws
   * the worker and keeps the membership for a restart within HEARTBEAT_TIMEOUT (false:
   * nothing moves, a gap of the restart's length).
   */
  readonly shutdownDrain: boolean;
  readonly onCoordinationLoss: CoordinationLossPolicy;
  /** Give streams only to members whose worker is fetching (a dead worker's streams move). */
  readonly requireWorker: boolean;
  readonly host: string;
  readonly port: number;
  readonly adminToken: string | undefined;
  readonly logLevel: LogLevel;
  readonly location: string;
  /** Legacy members (fingerv7 without a sidecar): TOTAL_SERVERS of the old static hashing. */
  readonly legacyTotalServers: number | undefined;
  readonly legacyHeartbeatTimeoutMs: number;
  readonly legacyHeartbeatsTable: string;
  /** How long the events table keeps what moved and why. */
  readonly eventRetentionMs: number;
  /**
   * Who may call the worker-facing routes (/v1/*, the older worker API): CIDRs. Default
   * loopback only: the worker runs beside its agent, and anyone else could release its
   * streams or speak for it.
   */
  readonly workerAllow: readonly string[];
  /** LABELS: what this agent's worker is (e.g. exit=br), matched against streams' placement constraints. */
  readonly labels: Labels;
  /** STREAMS_PLACEMENT_COLUMN: the catalog column whose "key=value,..." text constrains where a stream may go. */
  readonly streamsPlacementColumn: string | undefined;
  /** Stream health (shared/stream-health.ts and shared/placement/health-rules.ts). */
  readonly streamHealth: StreamHealthSettings;
  /** Intervals derived from the settings above: computed and checked here, used everywhere. */
  readonly timings: Timings;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** An instance id: the one pattern INSTANCE_ID, routes and the CLI accept. */
export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
export const INSTANCE_ID_RULE = "1-128 letters, digits or . _ : @ - (starting with a letter or digit)";
const INSTANCE = INSTANCE_ID_PATTERN;
const PREFIX = /^[A-Za-z0-9][A-Za-z0-9:_.-]{0,63}$/;
const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

function databaseUrl(env: Env): string {
  const direct = pick(env, ["DATABASE_URL"]);
  if (direct) return url(direct.name, direct.value, ["postgres:", "postgresql:"]);
  const host = matching(env, ["POSTGRES_HOST", "PGHOST"], "localhost", /^[A-Za-z0-9._:\[\]-]{1,253}$/, "a host name or address");
  const port = integer(env, ["POSTGRES_PORT", "PGPORT"], 5432, 1, 65535);
  const db = matching(env, ["POSTGRES_DB", "PGDATABASE"], "postgres", /^[^\s/?#]{1,63}$/, "a database name");
  const user = matching(env, ["POSTGRES_USER", "PGUSER"], "postgres", /^[^\s/?#@:]{1,63}$/, "a user name");
  const password = pick(env, ["POSTGRES_PASSWORD", "PGPASSWORD"])?.value ?? "";
  const auth = password ? `${encodeURIComponent(user)}:${encodeURIComponent(password)}` : encodeURIComponent(user);
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `postgres://${auth}@${h}:${port}/${encodeURIComponent(db)}`;
}

function tableName(env: Env): { schema?: string; name: string } {
  const got = pick(env, ["STREAMS_TABLE", "DB_TABLE_NAME"]);
  if (!got) return { name: "streams" };
  const parts = got.value.split(".");
  if (parts.length > 2 || !parts.every((p) => IDENT.test(p))) {
    throw bad(got.name, got.value, "a table name of letters, digits and _ (optionally schema.table)");
  }
  return parts.length === 2 ? { schema: parts[0]!, name: parts[1]! } : { name: parts[0]! };
}

export function loadConfig(env: Env = {}): Config {
  const heartbeatIntervalMs = seconds(env, ["HEARTBEAT_INTERVAL"], 1000);
  const heartbeatTimeoutMs = seconds(env, ["HEARTBEAT_TIMEOUT", "REDIS_HEARTBEAT_TTL_SECS"], 5000);
  const maxMissed = integer(env, ["MAX_MISSED_HEARTBEATS"], 2, 1, 1000);
  const warningDefault = Math.min(heartbeatIntervalMs * (maxMissed + 0.5), heartbeatTimeoutMs * 0.6);
  const heartbeatWarningMs = seconds(env, ["HEARTBEAT_WARNING_THRESHOLD"], Math.round(warningDefault));
  const workerLeaseMs = seconds(env, ["WORKER_LEASE"], Math.round(heartbeatTimeoutMs * 0.6));
  const leaderLeaseTtlMs = seconds(env, ["LEADER_LEASE_TTL"], 5000, { min: 0.1 });
  const fallbackGraceMs = seconds(env, ["FALLBACK_GRACE"], leaderLeaseTtlMs + heartbeatTimeoutMs);
  const hashSettleMs = seconds(env, ["HASH_SETTLE"], 2 * heartbeatIntervalMs);

  const legacy = pick(env, ["LEGACY_TOTAL_SERVERS", "TOTAL_SERVERS"]);
  const legacyTotalServers = legacy ? integer(env, [legacy.name], 0, 1, 10_000) : undefined;
  // DISTRIBUTE_LOAD is a legacy switch (false = every instance takes every stream). The
  // sidecar always distributes; the name is accepted so old environment files still load.
  boolean(env, ["DISTRIBUTE_LOAD"], true);

  const adminToken = pick(env, ["ADMIN_TOKEN"])?.value;
  if (adminToken !== undefined && adminToken.length < 8) {
    throw new ConfigError("ADMIN_TOKEN", "Invalid setting ADMIN_TOKEN: expected at least 8 characters (unset it to refuse all admin calls).");
  }

  const base: Omit<Config, "timings"> = {
    instanceId: matching(env, ["INSTANCE_ID", "SERVER_ID"], sanitizeHostname(os.hostname()), INSTANCE, INSTANCE_ID_RULE),
    maxStreams: integer(env, ["MAX_STREAMS"], 100, 0, 100_000),
    databaseUrl: databaseUrl(env),
    schema: matching(env, ["ORCHESTRATOR_SCHEMA"], "orchestrator", IDENT, "a schema name of letters, digits and _"),
    streamsTable: tableName(env),
    streamsIdColumn: matching(env, ["STREAMS_ID_COLUMN"], "id", IDENT, "a column name of letters, digits and _"),
    redisUrls: redisUrls(env),
    redisSentinel: redisSentinel(env, redisUrls(env)),
    redisKeyPrefix: matching(env, ["REDIS_KEY_PREFIX"], "fingerv7", PREFIX, "1-64 letters, digits or : _ . -"),
    useOrchestrator: boolean(env, ["USE_ORCHESTRATOR"], true),
    heartbeatIntervalMs,
    heartbeatTimeoutMs,
    heartbeatWarningMs,
    workerLeaseMs,
    leaderLeaseTtlMs,
    fallbackGraceMs,
    hashSettleMs,
    imbalanceThreshold: ratio(env, ["IMBALANCE_THRESHOLD"], 0.15),
    maxStreamDifference: integer(env, ["MAX_STREAM_DIFFERENCE"], 3, 1, 100_000),
    rebalanceCooldownMs: seconds(env, ["REBALANCE_COOLDOWN", "REBALANCE_INTERVAL"], 300_000, { min: 0 }),
    catalogRefreshMs: seconds(env, ["CATALOG_REFRESH"], 5000, { min: 0.1 }),
    workerTimeoutMs: seconds(env, ["WORKER_TIMEOUT"], heartbeatTimeoutMs),
    drainTimeoutMs: seconds(env, ["DRAIN_TIMEOUT"], 3 * heartbeatTimeoutMs),
    shutdownDrain: boolean(env, ["SHUTDOWN_DRAIN"], true),
    onCoordinationLoss: oneOf(env, ["ON_COORDINATION_LOSS"], "keep", ["keep", "stop"] as const),
    requireWorker: boolean(env, ["REQUIRE_WORKER"], true),
    host: matching(env, ["HOST", "BIND_ADDRESS"], "0.0.0.0", /^[A-Za-z0-9.:\[\]-]{1,253}$/, "an address to listen on, e.g. 0.0.0.0 or 127.0.0.1"),
    port: integer(env, ["PORT"], 8001, 0, 65535),
    adminToken,
    logLevel: oneOf(env, ["LOG_LEVEL"], "info", LOG_LEVELS),
    location: matching(env, ["LOCATION", "INSTANCE_LOCATION"], "", /^[^\n\r]{0,128}$/, "a short label"),
    legacyTotalServers,
    legacyHeartbeatTimeoutMs: seconds(env, ["LEGACY_HEARTBEAT_TIMEOUT"], 180_000),
    legacyHeartbeatsTable: matching(env, ["LEGACY_HEARTBEATS_TABLE"], "server_heartbeats", IDENT, "a table name of letters, digits and _"),
    eventRetentionMs: seconds(env, ["EVENT_RETENTION"], 7 * 86_400_000, { min: 60, max: 366 * 86_400 }),
    workerAllow: cidrs(env, ["WORKER_ALLOW"], ["127.0.0.1/32", "::1/128"]),
    labels: labels(env),
    streamsPlacementColumn: pick(env, ["STREAMS_PLACEMENT_COLUMN"]) ? matching(env, ["STREAMS_PLACEMENT_COLUMN"], "", IDENT, "a column name of letters, digits and _") : undefined,
    streamHealth: {
      failoverAfterMs: seconds(env, ["STREAM_FAILOVER_AFTER"], 120_000, { min: 1 }),
      failureMemoryMs: seconds(env, ["STREAM_FAILURE_MEMORY"], 6 * 3_600_000, { min: 1, max: 30 * 86_400 }),
      quarantineAfter: integer(env, ["STREAM_QUARANTINE_AFTER"], 3, 1, 1000),
      quarantineRetryMs: seconds(env, ["STREAM_QUARANTINE_RETRY"], 900_000, { min: 1 }),
      failoverBudgetPerMinute: integer(env, ["STREAM_FAILOVER_BUDGET"], 20, 1, 100_000),
    },
  };
  checkAcross(base);
  const timings = deriveTimings(base);
  checkTimings(base, timings);
  return Object.freeze({ ...base, timings: Object.freeze(timings) });
}

function labels(env: Env): Labels {
  const got = pick(env, ["LABELS"]);
  if (!got) return {};
  const parsed = parseLabels(got.value);
  if (!parsed.ok) throw bad(got.name, got.value, `${LABELS_RULE} (${parsed.error})`);
  return parsed.labels;
}

/** Checks between settings, in the spirit of client-go's "leaseDuration must be greater than renewDeadline". */
function checkAcross(c: Omit<Config, "timings">): void {
  const s = (ms: number) => `${ms / 1000}s`;
  if (c.workerLeaseMs >= c.heartbeatTimeoutMs) {
    throw new ConfigError("WORKER_LEASE", `Invalid setting WORKER_LEASE=${s(c.workerLeaseMs)}: the worker's lease must be shorter than HEARTBEAT_TIMEOUT=${s(c.heartbeatTimeoutMs)}, or a silent agent's worker could still be serving when its streams move.`);
  }
  if (c.workerLeaseMs <= c.heartbeatIntervalMs) {
    throw new ConfigError("WORKER_LEASE", `Invalid setting WORKER_LEASE=${s(c.workerLeaseMs)}: the worker's lease must be longer than HEARTBEAT_INTERVAL=${s(c.heartbeatIntervalMs)}, or it lapses between two heartbeats.`);
  }
  if (c.heartbeatTimeoutMs <= 2 * c.heartbeatIntervalMs) {
    throw new ConfigError("HEARTBEAT_TIMEOUT", `Invalid setting HEARTBEAT_TIMEOUT=${s(c.heartbeatTimeoutMs)}: must be more than twice HEARTBEAT_INTERVAL=${s(c.heartbeatIntervalMs)}, or one late heartbeat declares a live agent dead.`);
  }
  if (c.heartbeatWarningMs >= c.heartbeatTimeoutMs) {
    throw new ConfigError("HEARTBEAT_WARNING_THRESHOLD", `Invalid setting HEARTBEAT_WARNING_THRESHOLD=${s(c.heartbeatWarningMs)}: must be shorter than HEARTBEAT_TIMEOUT=${s(c.heartbeatTimeoutMs)}.`);
  }
  if (c.leaderLeaseTtlMs < 2 * c.heartbeatIntervalMs) {
    throw new ConfigError("LEADER_LEASE_TTL", `Invalid setting LEADER_LEASE_TTL=${s(c.leaderLeaseTtlMs)}: must be at least twice HEARTBEAT_INTERVAL=${s(c.heartbeatIntervalMs)} so the leader can renew it in time.`);
  }
  if (c.fallbackGraceMs < c.leaderLeaseTtlMs) {
    throw new ConfigError("FALLBACK_GRACE", `Invalid setting FALLBACK_GRACE=${s(c.fallbackGraceMs)}: must be at least LEADER_LEASE_TTL=${s(c.leaderLeaseTtlMs)}, or every ordinary leader change flips the fleet to hashing.`);
  }
  if (c.streamHealth.quarantineRetryMs > c.streamHealth.failureMemoryMs) {
    throw new ConfigError("STREAM_QUARANTINE_RETRY", `Invalid setting STREAM_QUARANTINE_RETRY=${s(c.streamHealth.quarantineRetryMs)}: must not exceed STREAM_FAILURE_MEMORY=${s(c.streamHealth.failureMemoryMs)}, or a quarantined stream would have forgotten its failures before its first retry.`);
  }
  if (c.streamsTable.schema === c.schema) {
    throw new ConfigError("STREAMS_TABLE", `Invalid setting STREAMS_TABLE=${c.streamsTable.schema}.${c.streamsTable.name}: the catalog cannot live in the orchestrator's own schema ${c.schema}.`);
  }
}

/** Host names may contain characters an instance id may not; keep the id valid. */
function sanitizeHostname(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._:@-]/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  return cleaned.slice(0, 128) || "agent";
}

/** The config as it may be shown to people: no passwords, no token. */
export function describeConfig(c: Config): Record<string, unknown> {
  return {
    ...c,
    databaseUrl: redactUrl(c.databaseUrl),
    redisUrls: c.redisUrls.map(redactUrl),
    redisSentinel: c.redisSentinel && {
      ...c.redisSentinel,
      password: c.redisSentinel.password === undefined ? undefined : "***",
      sentinelPassword: c.redisSentinel.sentinelPassword === undefined ? undefined : "***",
    },
    adminToken: undefined,
    admin: c.adminToken ? "enabled (token set)" : "disabled (no ADMIN_TOKEN)",
  };
}
