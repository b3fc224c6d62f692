/**
 * `npm run agent`: one agent, configured by the environment. The only file that reads
 * process.env, listens on a port or handles signals.
 *
 * SIGTERM / SIGINT: drain (hand the streams off), release the lease, exit, all within
 * DRAIN_TIMEOUT; a second signal (more than a second after the first) exits at once.
 */
import { serve } from "@hono/node-server";
import { systemClock } from "../shared/clock.js";
import { ConfigError, describeConfig, loadConfig, type Config } from "../shared/config.js";
import { createLogger } from "../shared/logger.js";
import { Agent, DuplicateInstanceError } from "./agent.js";
import { createApp } from "./http/app.js";

/** Signals this close to the first are the same signal forwarded twice, not a second one. */
const DUPLICATE_SIGNAL_MS = 1000;

function main(): void {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`fingerv7-sidecar: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel });
  const agent = new Agent({ config, clock: systemClock, logger });
  const app = createApp(agent);
  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) => {
    logger.info({ category: "STARTUP", port: info.port, config: describeConfig(config) }, `listening on ${config.host}:${info.port}`);
  });
  server.on("error", (err) => {
    logger.fatal({ err, category: "ERROR" }, `cannot listen on ${config.host}:${config.port}`);
    process.exit(1);
  });

  let stopping = false;
  let firstSignalAt = 0;
  const stop = (signal: string) => {
    // A wrapper (tsx, npm) may forward the same signal again a moment later: one signal.
    if (stopping && systemClock.now() - firstSignalAt < DUPLICATE_SIGNAL_MS) return;
    if (stopping) {
      logger.warn({ category: "INSTANCE", signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    firstSignalAt = systemClock.now();
    logger.info({ category: "INSTANCE", signal }, "shutting down");
    const hardStop = setTimeout(() => process.exit(1), config.drainTimeoutMs + 5000);
    hardStop.unref();
    agent
      .shutdown()
      .catch((err) => logger.error({ err, category: "ERROR" }, "shutdown failed"))
      .finally(() => {
        server.close();
        process.exit(0);
      });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));

  agent.start().catch((err) => {
    if (err instanceof DuplicateInstanceError) {
      logger.fatal({ category: "STARTUP" }, err.message);
      process.stderr.write(`fingerv7-sidecar: ${err.message}\n`);
      process.exit(3);
    }
    if (stopping) return;
    logger.fatal({ err, category: "ERROR" }, "agent failed to start");
    process.exit(1);
  });
}

main();
