/**
 * The Redis settings: REDIS_URL (one node, or several for a Redlock quorum) or Redis
 * under Sentinel (REDIS_SENTINELS and friends). Read from the `env` loadConfig hands in.
 *
 * Guarantees: either plain URLs or sentinels describe where the lease lives, never a mix
 * (a quorum beside sentinels is refused); a password setting without sentinels is refused
 * rather than ignored. Does not: connect (shared/redis.ts builds the clients).
 */
import net from "node:net";
import { bad, ConfigError, matching, pick, url, type Env } from "./config-values.js";

export interface RedisSentinelConfig {
  readonly sentinels: readonly { readonly host: string; readonly port: number }[];
  /** The master group name the sentinels monitor. */
  readonly name: string;
  /** Password of the data nodes (REDIS_PASSWORD) and of the sentinels (REDIS_SENTINEL_PASSWORD). */
  readonly password: string | undefined;
  readonly sentinelPassword: string | undefined;
}

export function redisUrls(env: Env): string[] {
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
export function redisSentinel(env: Env, urls: readonly string[]): RedisSentinelConfig | undefined {
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
