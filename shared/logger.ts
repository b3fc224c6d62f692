/**
 * Structured logs (pino, JSON). Components get child loggers:
 * `logger.child({ component: "elector" })`. The operator documents' categories travel as
 * the `category` field: STARTUP, INSTANCE, STREAM, BALANCE, ERROR, PERF.
 * Secrets never reach a log line: URL passwords and tokens are redacted at the source.
 */
import { pino, type Logger, type DestinationStream } from "pino";
import type { LogLevel } from "./config.js";

export type { Logger } from "pino";

export type Category = "STARTUP" | "INSTANCE" | "STREAM" | "BALANCE" | "ERROR" | "PERF";

const REDACT_PATHS = [
  "password",
  "*.password",
  "token",
  "*.token",
  "adminToken",
  "*.adminToken",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "req.headers.authorization",
];

export function createLogger(opts: { level?: LogLevel; instanceId?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? "info",
      base: opts.instanceId ? { instance: opts.instanceId } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "***" },
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err },
    },
    opts.destination,
  );
}

/** A logger that writes nothing, for tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
