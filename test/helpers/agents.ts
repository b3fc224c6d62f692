/**
 * A real in-process Agent for tests: fast timings, no worker required, silent, configured
 * through the same loadConfig the agent uses. `env` overrides anything.
 */
import { Agent } from "../../agent/agent.js";
import { systemClock } from "../../shared/clock.js";
import { loadConfig } from "../../shared/config.js";
import { silentLogger, type Logger } from "../../shared/logger.js";
import { FAST_TIMINGS } from "./cluster.js";
import { REDIS_URL } from "./services.js";

export function newAgent(o: { id: string; databaseUrl: string; prefix: string; redisUrl?: string; env?: Record<string, string>; logger?: Logger }): Agent {
  const config = loadConfig({
    ...FAST_TIMINGS,
    DATABASE_URL: o.databaseUrl,
    REDIS_URL: o.redisUrl ?? REDIS_URL,
    REDIS_KEY_PREFIX: o.prefix,
    INSTANCE_ID: o.id,
    REQUIRE_WORKER: "false",
    LOG_LEVEL: "silent",
    ...o.env,
  });
  return new Agent({ config, clock: systemClock, logger: o.logger ?? silentLogger() });
}
