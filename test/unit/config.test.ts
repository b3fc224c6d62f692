import { describe, expect, it } from "vitest";
import { ConfigError, describeConfig, loadConfig, redactUrl } from "../../shared/config.js";

const base = { INSTANCE_ID: "node-1" };

function error(env: Record<string, string>): ConfigError {
  try {
    loadConfig({ ...base, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig defaults", () => {
  const c = loadConfig(base);
  it("uses the documented defaults", () => {
    expect(c.heartbeatIntervalMs).toBe(1000);
    expect(c.heartbeatTimeoutMs).toBe(5000);
    expect(c.leaderLeaseTtlMs).toBe(5000);
    expect(c.workerLeaseMs).toBe(3000);
    expect(c.port).toBe(8001);
    expect(c.streamsTable).toEqual({ name: "streams" });
    expect(c.streamsIdColumn).toBe("id");
    expect(c.schema).toBe("orchestrator");
    expect(c.redisUrls).toEqual(["redis://localhost:6379"]);
    expect(c.redisKeyPrefix).toBe("fingerv7");
    expect(c.useOrchestrator).toBe(true);
    expect(c.imbalanceThreshold).toBe(0.15);
    expect(c.maxStreamDifference).toBe(3);
    expect(c.rebalanceCooldownMs).toBe(300_000);
    expect(c.onCoordinationLoss).toBe("keep");
    expect(c.adminToken).toBeUndefined();
    expect(c.logLevel).toBe("info");
    expect(c.databaseUrl).toBe("postgres://postgres@localhost:5432/postgres");
    expect(c.requireWorker).toBe(true);
    expect(c.legacyTotalServers).toBeUndefined();
  });
  it("is frozen", () => {
    expect(Object.isFrozen(c)).toBe(true);
  });
  it("defaults the instance id to a valid form of the host name", () => {
    const c2 = loadConfig({});
    expect(c2.instanceId).toMatch(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/);
  });
});

describe("aliases from the operator documents", () => {
  it("SERVER_ID → instance id, INSTANCE_ID wins", () => {
    expect(loadConfig({ SERVER_ID: "3" }).instanceId).toBe("3");
    expect(loadConfig({ SERVER_ID: "3", INSTANCE_ID: "a" }).instanceId).toBe("a");
  });
  it("DB_TABLE_NAME → streams table, STREAMS_TABLE wins; schema-qualified allowed", () => {
    expect(loadConfig({ ...base, DB_TABLE_NAME: "radios" }).streamsTable).toEqual({ name: "radios" });
    expect(loadConfig({ ...base, DB_TABLE_NAME: "radios", STREAMS_TABLE: "public.streams" }).streamsTable).toEqual({ schema: "public", name: "streams" });
  });
  it("REBALANCE_INTERVAL → cooldown, REBALANCE_COOLDOWN wins", () => {
    expect(loadConfig({ ...base, REBALANCE_INTERVAL: "60" }).rebalanceCooldownMs).toBe(60_000);
    expect(loadConfig({ ...base, REBALANCE_INTERVAL: "60", REBALANCE_COOLDOWN: "30" }).rebalanceCooldownMs).toBe(30_000);
  });
  it("POSTGRES_* build the database URL, with the password escaped; DATABASE_URL wins", () => {
    const c = loadConfig({ ...base, POSTGRES_HOST: "db", POSTGRES_PORT: "6543", POSTGRES_DB: "fingerv7", POSTGRES_USER: "app", POSTGRES_PASSWORD: "change-me/@:" });
    expect(c.databaseUrl).toBe("postgres://app:change-me%2F%40%3A@db:6543/fingerv7");
    expect(loadConfig({ ...base, POSTGRES_HOST: "db", DATABASE_URL: "postgres://u@other/x" }).databaseUrl).toBe("postgres://u@other/x");
  });
  it("REDIS_HEARTBEAT_TTL_SECS → heartbeat timeout, HEARTBEAT_TIMEOUT wins", () => {
    expect(loadConfig({ ...base, REDIS_HEARTBEAT_TTL_SECS: "8" }).heartbeatTimeoutMs).toBe(8000);
    expect(loadConfig({ ...base, REDIS_HEARTBEAT_TTL_SECS: "8", HEARTBEAT_TIMEOUT: "6" }).heartbeatTimeoutMs).toBe(6000);
  });
  it("TOTAL_SERVERS → legacy total, LEGACY_TOTAL_SERVERS wins", () => {
    expect(loadConfig({ ...base, TOTAL_SERVERS: "8" }).legacyTotalServers).toBe(8);
    expect(loadConfig({ ...base, TOTAL_SERVERS: "8", LEGACY_TOTAL_SERVERS: "4" }).legacyTotalServers).toBe(4);
  });
  it("accepts the other documented names", () => {
    const c = loadConfig({ ...base, DISTRIBUTE_LOAD: "true", MAX_MISSED_HEARTBEATS: "3", HEARTBEAT_WARNING_THRESHOLD: "2", TZ: "America/Sao_Paulo", ORCHESTRATOR_URL: "http://localhost:8001", USE_ORCHESTRATOR: "false" });
    expect(c.heartbeatWarningMs).toBe(2000);
    expect(c.useOrchestrator).toBe(false);
  });
  it("several REDIS_URL values make a quorum list", () => {
    expect(loadConfig({ ...base, REDIS_URL: "redis://a:6379, redis://b:6379,redis://c:6379" }).redisUrls).toEqual(["redis://a:6379", "redis://b:6379", "redis://c:6379"]);
  });
});

describe("durations in seconds, decimals allowed", () => {
  it("parses 0.2 as 200 ms", () => {
    const c = loadConfig({ ...base, HEARTBEAT_INTERVAL: "0.2", HEARTBEAT_TIMEOUT: "1", WORKER_LEASE: "0.6", LEADER_LEASE_TTL: "1" });
    expect(c.heartbeatIntervalMs).toBe(200);
    expect(c.workerLeaseMs).toBe(600);
  });
  it("derives the worker lease from the timeout when unset", () => {
    expect(loadConfig({ ...base, HEARTBEAT_TIMEOUT: "10" }).workerLeaseMs).toBe(6000);
  });
  it("an agent without a leader reads the whole membership a timeout, a settle and an interval before its fallback, or at once", () => {
    // Defaults: FALLBACK_GRACE 10 s = LEADER_LEASE_TTL 5 + HEARTBEAT_TIMEOUT 5; minus the timeout, HASH_SETTLE 2 and one 1 s interval.
    expect(loadConfig(base).timings.wholeViewLeaderlessMs).toBe(2000);
    expect(loadConfig({ ...base, FALLBACK_GRACE: "30" }).timings.wholeViewLeaderlessMs).toBe(22_000);
    expect(loadConfig({ ...base, FALLBACK_GRACE: "30", HASH_SETTLE: "5" }).timings.wholeViewLeaderlessMs).toBe(19_000);
    expect(loadConfig({ ...base, FALLBACK_GRACE: "8" }).timings.wholeViewLeaderlessMs).toBe(0);
    for (const grace of ["5", "7.5", "8", "8.5", "9", "60"]) {
      const c = loadConfig({ ...base, FALLBACK_GRACE: grace });
      const t = c.timings.wholeViewLeaderlessMs;
      expect(t === 0 || t + c.heartbeatTimeoutMs + c.hashSettleMs + c.heartbeatIntervalMs <= c.fallbackGraceMs).toBe(true);
    }
  });
});

describe("bad values stop the agent with one line naming the setting", () => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ HEARTBEAT_INTERVAL: "abc" }, "HEARTBEAT_INTERVAL", /seconds/],
    [{ HEARTBEAT_TIMEOUT: "-1" }, "HEARTBEAT_TIMEOUT", /seconds/],
    [{ HEARTBEAT_TIMEOUT: "5s" }, "HEARTBEAT_TIMEOUT", /seconds/],
    [{ LEADER_LEASE_TTL: "0" }, "LEADER_LEASE_TTL", /seconds/],
    [{ MAX_STREAMS: "ten" }, "MAX_STREAMS", /whole number/],
    [{ MAX_STREAMS: "2.5" }, "MAX_STREAMS", /whole number/],
    [{ PORT: "70000" }, "PORT", /whole number between 0 and 65535/],
    [{ IMBALANCE_THRESHOLD: "15" }, "IMBALANCE_THRESHOLD", /fraction/],
    [{ MAX_STREAM_DIFFERENCE: "-2" }, "MAX_STREAM_DIFFERENCE", /whole number/],
    [{ USE_ORCHESTRATOR: "maybe" }, "USE_ORCHESTRATOR", /true or false/],
    [{ ON_COORDINATION_LOSS: "panic" }, "ON_COORDINATION_LOSS", /keep, stop/],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL", /one of/],
    [{ STREAMS_TABLE: "streams; drop table x" }, "STREAMS_TABLE", /table name/],
    [{ DB_TABLE_NAME: "a.b.c" }, "DB_TABLE_NAME", /table name/],
    [{ STREAMS_ID_COLUMN: "id\"" }, "STREAMS_ID_COLUMN", /column name/],
    [{ REDIS_URL: "localhost:6379" }, "REDIS_URL", /redis:/],
    [{ DATABASE_URL: "mysql://x@y/z" }, "DATABASE_URL", /postgres/],
    [{ REDIS_KEY_PREFIX: "has space" }, "REDIS_KEY_PREFIX", /letters/],
    [{ INSTANCE_ID: "-bad" }, "INSTANCE_ID", /letters/],
    [{ ADMIN_TOKEN: "short" }, "ADMIN_TOKEN", /8 characters/],
    [{ POSTGRES_PORT: "x" }, "POSTGRES_PORT", /whole number/],
  ];
  for (const [env, setting, pattern] of cases) {
    it(`${setting}=${Object.values(env)[0]}`, () => {
      const e = error(env);
      expect(e.setting).toBe(setting);
      expect(e.message).toContain(setting);
      expect(e.message).toMatch(pattern);
      expect(e.message).not.toContain("\n");
    });
  }
});

describe("checks across settings", () => {
  it("the worker lease must be shorter than HEARTBEAT_TIMEOUT", () => {
    const e = error({ WORKER_LEASE: "5", HEARTBEAT_TIMEOUT: "5" });
    expect(e.setting).toBe("WORKER_LEASE");
    expect(e.message).toMatch(/shorter than HEARTBEAT_TIMEOUT/);
  });
  it("the worker lease must be longer than HEARTBEAT_INTERVAL", () => {
    expect(error({ WORKER_LEASE: "1", HEARTBEAT_INTERVAL: "1" }).setting).toBe("WORKER_LEASE");
  });
  it("HEARTBEAT_TIMEOUT must exceed two intervals", () => {
    expect(error({ HEARTBEAT_TIMEOUT: "2", HEARTBEAT_INTERVAL: "1", WORKER_LEASE: "1.5" }).setting).toBe("HEARTBEAT_TIMEOUT");
  });
  it("the warning threshold must be below the timeout", () => {
    expect(error({ HEARTBEAT_WARNING_THRESHOLD: "6" }).setting).toBe("HEARTBEAT_WARNING_THRESHOLD");
  });
  it("the leader lease must allow renewals", () => {
    expect(error({ LEADER_LEASE_TTL: "1", HEARTBEAT_INTERVAL: "1", HEARTBEAT_TIMEOUT: "5" }).setting).toBe("LEADER_LEASE_TTL");
  });
  it("the fallback grace must cover a leader change", () => {
    expect(error({ FALLBACK_GRACE: "2" }).setting).toBe("FALLBACK_GRACE");
  });
  it("the catalog may not live in the orchestrator's schema", () => {
    expect(error({ STREAMS_TABLE: "orchestrator.streams" }).setting).toBe("STREAMS_TABLE");
  });
});

describe("secrets never show", () => {
  it("redacts URL passwords and the admin token", () => {
    const c = loadConfig({ ...base, DATABASE_URL: "postgres://app:change-me-secret@db/x", REDIS_URL: "redis://:change-me-too@r:6379", ADMIN_TOKEN: "change-me-admin-token" });
    const shown = JSON.stringify(describeConfig(c));
    expect(shown).not.toContain("change-me-secret");
    expect(shown).not.toContain("change-me-too");
    expect(shown).not.toContain("change-me-admin-token");
    expect(redactUrl("postgres://u:p@h/d")).toBe("postgres://u:***@h/d");
  });
  it("an invalid URL's password is not echoed in the error", () => {
    const e = error({ DATABASE_URL: "mysql://u:change-me-secret@h/d" });
    expect(e.message).not.toContain("change-me-secret");
  });
});
