import { describe, expect, it } from "vitest";
import { ConfigError, describeConfig, loadConfig } from "../../shared/config.js";
import { FAILOVER_REPLY, reconnectOnFailoverReply, redisTargets } from "../../shared/redis.js";

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

describe("Redis Sentinel settings", () => {
  it("are off by default: one URL, no sentinel", () => {
    const c = loadConfig(base);
    expect(c.redisSentinel).toBeUndefined();
    expect(redisTargets(c)).toEqual(["redis://localhost:6379"]);
  });

  it("REDIS_SENTINELS: host:port list, IPv6 in brackets, default name mymaster", () => {
    const c = loadConfig({ ...base, REDIS_SENTINELS: "s1.example.invalid:26379, 10.0.0.2:26380,[::1]:26381" });
    expect(c.redisSentinel).toEqual({
      sentinels: [
        { host: "s1.example.invalid", port: 26379 },
        { host: "10.0.0.2", port: 26380 },
        { host: "::1", port: 26381 },
      ],
      name: "mymaster",
      password: undefined,
      sentinelPassword: undefined,
    });
    expect(redisTargets(c)).toEqual([{ sentinel: c.redisSentinel }]);
  });

  it("REDIS_SENTINEL_NAME and the passwords", () => {
    const c = loadConfig({ ...base, REDIS_SENTINELS: "s1.example.invalid:26379", REDIS_SENTINEL_NAME: "radio-redis", REDIS_PASSWORD: "change-me", REDIS_SENTINEL_PASSWORD: "change-me-too" });
    expect(c.redisSentinel?.name).toBe("radio-redis");
    expect(c.redisSentinel?.password).toBe("change-me");
    expect(c.redisSentinel?.sentinelPassword).toBe("change-me-too");
  });

  it("a single REDIS_URL beside sentinels is accepted (and unused)", () => {
    const c = loadConfig({ ...base, REDIS_SENTINELS: "s1.example.invalid:26379", REDIS_URL: "redis://redis.example.invalid:6379" });
    expect(redisTargets(c)).toHaveLength(1);
    expect(typeof redisTargets(c)[0]).toBe("object");
  });

  it("refuses a Redlock quorum of several REDIS_URLs beside sentinels", () => {
    const e = error({ REDIS_SENTINELS: "s1.example.invalid:26379", REDIS_URL: "redis://a.example.invalid:6379,redis://b.example.invalid:6379,redis://c.example.invalid:6379" });
    expect(e.setting).toBe("REDIS_URL");
    expect(e.message).toMatch(/REDIS_SENTINELS/);
    expect(e.message.split("\n")).toHaveLength(1);
  });

  it.each([
    ["s1.example.invalid"],
    ["s1.example.invalid:"],
    ["s1.example.invalid:0"],
    ["s1.example.invalid:70000"],
    ["::1:26379"],
    ["[::1]"],
    ["[not-v6]:26379"],
    ["s1 example:26379"],
    [" , "],
  ])("REDIS_SENTINELS=%j is refused with one line", (value) => {
    const e = error({ REDIS_SENTINELS: value });
    expect(e.setting).toBe("REDIS_SENTINELS");
    expect(e.message).toMatch(/^Invalid setting REDIS_SENTINELS=/);
    expect(e.message.split("\n")).toHaveLength(1);
  });

  it("refuses a bad master group name", () => {
    const e = error({ REDIS_SENTINELS: "s1.example.invalid:26379", REDIS_SENTINEL_NAME: "my master" });
    expect(e.setting).toBe("REDIS_SENTINEL_NAME");
    expect(e.message.split("\n")).toHaveLength(1);
  });

  it.each(["REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD", "REDIS_SENTINEL_NAME"])("%s without REDIS_SENTINELS is refused (the URL carries the password)", (name) => {
    const e = error({ [name]: "change-me" });
    expect(e.setting).toBe(name);
    expect(e.message).not.toContain("change-me");
    expect(e.message.split("\n")).toHaveLength(1);
  });

  it("describeConfig hides both passwords", () => {
    const c = loadConfig({ ...base, REDIS_SENTINELS: "s1.example.invalid:26379", REDIS_PASSWORD: "change-me-data", REDIS_SENTINEL_PASSWORD: "change-me-sentinel" });
    const shown = JSON.stringify(describeConfig(c));
    expect(shown).not.toContain("change-me-data");
    expect(shown).not.toContain("change-me-sentinel");
    expect((describeConfig(c).redisSentinel as { password: string }).password).toBe("***");
    expect(JSON.stringify(describeConfig(loadConfig({ ...base, REDIS_SENTINELS: "s1.example.invalid:26379" })))).not.toContain("***");
  });
});

describe("failover replies reconnect the client", () => {
  it.each([
    "READONLY You can't write against a read only replica.",
    "READONLY You can't write against a read only replica. script: 78df229a, on @user_script:1.",
    "ERR Error running script (call to f_1): @user_script:5: @user_script: 5: -READONLY You can't write against a read only replica.",
    "NOREPLICAS Not enough good replicas to write.",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "LOADING Redis is loading the dataset in memory",
  ])("%s", (message) => {
    expect(FAILOVER_REPLY.test(message)).toBe(true);
    expect(reconnectOnFailoverReply(new Error(message))).toBe(1);
  });
  it.each(["ERR wrong number of arguments", "NOSCRIPT No matching script", "Command timed out"])("not for %s", (message) => {
    expect(reconnectOnFailoverReply(new Error(message))).toBe(false);
  });
});
