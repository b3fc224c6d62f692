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
 */
import net from "node:net";
import os from "node:os";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
  }
}

export interface RedisSentinelConfig {
  readonly sentinels: readonly { readonly host: string; readonly port: number }[];
  /** The master group name the sentinels monitor. */
  readonly name: string;
  /** Password of the data nodes (REDIS_PASSWORD) and of the sentinels (REDIS_SENTINEL_PASSWORD). */
  readonly password: string | undefined;
  readonly sentinelPassword: string | undefined;
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
  /** Intervals derived from the settings above: computed and checked here, used everywhere. */
  readonly timings: Timings;
}

/**
 * Every interval the agent and the leader derive from the settings, in milliseconds.
 * Each one is a consequence of a setting, never a setting itself; they live here so that
 * the rules between them are checked in one place.
 */
export interface Timings {
  /** How often the leader renews its lease (a fifth of LEADER_LEASE_TTL: four retries fit in one TTL). */
  readonly electorRenewMs: number;
  /** How often a follower tries to take a free lease (half a heartbeat). */
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
  /** PostgreSQL connect timeout, whole seconds: HEARTBEAT_TIMEOUT rounded up. */
  readonly postgresConnectTimeoutS: number;
  /** A gap between two membership reads longer than this means nobody was watching: clocks restart. */
  readonly trackerMaxGapMs: number;
  /** A membership view older than this is too stale to decide anything from (3 heartbeats). */
  readonly maxViewAgeMs: number;
  /** How often an agent re-reads its own rows when no nudge arrives. */
  readonly ownRowsReloadMs: number;
  /** How old a cached catalog may be for hashing (CATALOG_REFRESH) and, orchestrated, as a fallback copy. */
  readonly catalogMaxAgeHashedMs: number;
  readonly catalogMaxAgeOrchestratedMs: number;
  /** A long-poll waits at most this long: a third of the lease, so the worker renews in time. */
  readonly longPollCapMs: number;
  /** A heartbeat key silent this long at start belongs to a crashed predecessor (1.5 heartbeats). */
  readonly duplicateSilentMs: number;
  /** How long a starting agent watches a live-looking key for progress before refusing to start. */
  readonly duplicateWatchMs: number;
  /** Members gone (left or dead, owning nothing) for this long are forgotten by the leader. */
  readonly memberForgetMs: number;
  /** How often the leader saves per-member statistics and prunes old events. */
  readonly statsSaveMs: number;
  readonly eventPruneMs: number;
}

export function deriveTimings(c: Omit<Config, "timings">): Timings {
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
    postgresConnectTimeoutS: Math.max(1, Math.ceil(c.heartbeatTimeoutMs / 1000)),
    trackerMaxGapMs: Math.max(2 * hb, hb + 1000),
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
  };
}

type Env = Readonly<Record<string, string | undefined>>;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** An instance id: the one pattern INSTANCE_ID, routes and the CLI accept. */
export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
export const INSTANCE_ID_RULE = "1-128 letters, digits or . _ : @ - (starting with a letter or digit)";
const INSTANCE = INSTANCE_ID_PATTERN;
const PREFIX = /^[A-Za-z0-9][A-Za-z0-9:_.-]{0,63}$/;
const LOG_LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

/** Reads the first of `names` that is set to a non-empty value. */
function pick(env: Env, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== "") return { name, value: value.trim() };
  }
  return undefined;
}

function bad(name: string, value: string, expected: string): ConfigError {
  return new ConfigError(name, `Invalid setting ${name}=${JSON.stringify(value)}: expected ${expected}.`);
}

function seconds(env: Env, names: readonly string[], fallbackMs: number, opts: { min?: number; max?: number } = {}): number {
  const got = pick(env, names);
  if (!got) return fallbackMs;
  const n = Number(got.value);
  const min = opts.min ?? 0.01;
  const max = opts.max ?? 86_400;
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(got.value) || !Number.isFinite(n) || n < min || n > max) {
    throw bad(got.name, got.value, `a duration in seconds between ${min} and ${max} (decimals allowed, e.g. 5 or 0.2)`);
  }
  return Math.round(n * 1000);
}

function integer(env: Env, names: readonly string[], fallback: number, min: number, max: number): number {
  const got = pick(env, names);
  if (!got) return fallback;
  const n = Number(got.value);
  if (!/^\d+$/.test(got.value) || n < min || n > max) {
    throw bad(got.name, got.value, `a whole number between ${min} and ${max}`);
  }
  return n;
}

function ratio(env: Env, names: readonly string[], fallback: number): number {
  const got = pick(env, names);
  if (!got) return fallback;
  const n = Number(got.value);
  if (!/^\d*(\.\d+)?$/.test(got.value) || !Number.isFinite(n) || n <= 0 || n >= 1) {
    throw bad(got.name, got.value, "a fraction between 0 and 1 (e.g. 0.15 for 15 %)");
  }
  return n;
}

function boolean(env: Env, names: readonly string[], fallback: boolean): boolean {
  const got = pick(env, names);
  if (!got) return fallback;
  const v = got.value.toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off"].includes(v)) return false;
  throw bad(got.name, got.value, "true or false");
}

function matching(env: Env, names: readonly string[], fallback: string, re: RegExp, expected: string): string {
  const got = pick(env, names);
  if (!got) return fallback;
  if (!re.test(got.value)) throw bad(got.name, got.value, expected);
  return got.value;
}

function oneOf<T extends string>(env: Env, names: readonly string[], fallback: T, allowed: readonly T[]): T {
  const got = pick(env, names);
  if (!got) return fallback;
  const v = got.value.toLowerCase() as T;
  if (!allowed.includes(v)) throw bad(got.name, got.value, `one of ${allowed.join(", ")}`);
  return v;
}

function url(name: string, value: string, protocols: readonly string[]): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw bad(name, redactUrl(value), `a URL such as ${protocols[0]}//host:port`);
  }
  if (!protocols.includes(parsed.protocol)) throw bad(name, redactUrl(value), `a URL starting with ${protocols.join(" or ")}//`);
  return value;
}

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

function redisUrls(env: Env): string[] {
  const got = pick(env, ["REDIS_URL"]);
  if (!got) return ["redis://localhost:6379"];
  const urls = got.value.split(",").map((s) => s.trim()).filter(Boolean);
  if (urls.length === 0) throw bad(got.name, got.value, "one or more redis:// URLs separated by commas");
  return urls.map((u) => url(got.name, u, ["redis:", "rediss:"]));
}

/**
 * REDIS_SENTINELS=host:port,[v6]:port,… with REDIS_SENTINEL_NAME and the passwords. The
 * lease then lives on the one master the sentinels name: a Redlock quorum of several
 * REDIS_URLs beside it would mix two models, so that is refused.
 */
function redisSentinel(env: Env, urls: readonly string[]): RedisSentinelConfig | undefined {
  const got = pick(env, ["REDIS_SENTINELS"]);
  const password = pick(env, ["REDIS_PASSWORD"])?.value;
  const sentinelPassword = pick(env, ["REDIS_SENTINEL_PASSWORD"])?.value;
  if (!got) {
    for (const name of ["REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD", "REDIS_SENTINEL_NAME"]) {
      if (pick(env, [name])) throw new ConfigError(name, `Invalid setting ${name}: it is used only with REDIS_SENTINELS (without sentinels the password belongs in REDIS_URL, redis://:PASSWORD@host:port).`);
    }
    return undefined;
  }
  const sentinels = got.value.split(",").map((p) => p.trim()).filter(Boolean).map((part) => {
    const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(part) ?? /^([A-Za-z0-9][A-Za-z0-9.-]{0,252}):(\d{1,5})$/.exec(part);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535 || (part.startsWith("[") && net.isIPv6(m[1]!) === false)) {
      throw bad(got.name, got.value, "sentinel addresses host:port separated by commas (IPv6 in brackets: [::1]:26379)");
    }
    return { host: m[1]!, port };
  });
  if (sentinels.length === 0) throw bad(got.name, got.value, "at least one sentinel host:port");
  if (urls.length > 1) {
    throw new ConfigError("REDIS_URL", `Invalid setting REDIS_URL: it lists ${urls.length} URLs (a Redlock quorum) while REDIS_SENTINELS is set; a quorum over sentinel-managed nodes gives no extra safety. Use one or the other (with REDIS_SENTINELS, REDIS_URL is ignored).`);
  }
  const name = matching(env, ["REDIS_SENTINEL_NAME"], "mymaster", /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, "a master group name of letters, digits or . _ : -");
  return { sentinels, name, password, sentinelPassword };
}

/** A list of CIDRs or single addresses ("10.0.0.0/8, ::1"), normalised to CIDRs. */
function cidrs(env: Env, names: readonly string[], fallback: readonly string[]): string[] {
  const got = pick(env, names);
  if (!got) return [...fallback];
  const out: string[] = [];
  for (const part of got.value.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [addr = "", bits, extra] = part.split("/");
    const family = net.isIP(addr);
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (family === 0 || extra !== undefined || (bits !== undefined && !/^\d{1,3}$/.test(bits)) || prefix > max) {
      throw bad(got.name, got.value, "addresses or CIDRs separated by commas, e.g. 127.0.0.1/32,::1/128 or 10.0.0.0/8");
    }
    out.push(`${addr}/${prefix}`);
  }
  if (out.length === 0) throw bad(got.name, got.value, "at least one address or CIDR");
  return out;
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
  };
  checkAcross(base);
  const timings = deriveTimings(base);
  checkTimings(base, timings);
  return Object.freeze({ ...base, timings: Object.freeze(timings) });
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
  if (c.streamsTable.schema === c.schema) {
    throw new ConfigError("STREAMS_TABLE", `Invalid setting STREAMS_TABLE=${c.streamsTable.schema}.${c.streamsTable.name}: the catalog cannot live in the orchestrator's own schema ${c.schema}.`);
  }
}

/**
 * The derived intervals must keep the rules the safety model leans on. They follow from
 * the checks above for every accepted setting; a failure here is a bug in deriveTimings,
 * so it is an Error, not a ConfigError.
 */
function checkTimings(c: Omit<Config, "timings">, t: Timings): void {
  const broken = (rule: string) => new Error(`derived timings break a rule: ${rule}`);
  if (t.longPollCapMs >= c.workerLeaseMs) throw broken("a long-poll must end before the worker's lease");
  if (t.electorRenewMs >= c.leaderLeaseTtlMs) throw broken("the leader must renew before its lease ends");
  if (t.redisCommandTimeoutMs > Math.max(200, c.heartbeatIntervalMs)) throw broken("a heartbeat must time out within one interval");
  if (t.trackerMaxGapMs >= c.heartbeatTimeoutMs + c.heartbeatIntervalMs + 1000) throw broken("a read gap must be noticed before a member could be called dead");
}

/** Host names may contain characters an instance id may not; keep the id valid. */
function sanitizeHostname(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._:@-]/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  return cleaned.slice(0, 128) || "agent";
}

/** Hides the password of a URL, for logs and status output. */
export function redactUrl(value: string): string {
  try {
    const u = new URL(value);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return value.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");
  }
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
