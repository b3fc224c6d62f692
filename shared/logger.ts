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

/** user:password@ inside any URL in a piece of text (error messages carry connection strings). */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*):[^\s@/]*@/gi;
/** Bearer tokens in header values or messages. */
const BEARER = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]+/g;

/** Hides URL passwords and bearer tokens in a string. */
export function redactText(text: string): string {
  return text.replace(URL_PASSWORD, "$1:***@").replace(BEARER, "$1***");
}

/** Applies redactText to every string in plain objects and arrays, a few levels deep. */
export function redactDeep<T>(value: T, depth = 4): T {
  if (typeof value === "string") return redactText(value) as T;
  if (depth <= 0 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth - 1)) as T;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, depth - 1);
  return out as T;
}

export function createLogger(opts: { level?: LogLevel; instanceId?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? "info",
      base: opts.instanceId ? { instance: opts.instanceId } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: "***" },
      formatters: { level: (label) => ({ level: label }), log: (obj) => redactDeep(obj) },
      // The standard serializer returns a non-plain object; copy it so its strings are scrubbed.
      serializers: { err: (e) => redactDeep({ ...pino.stdSerializers.err(e) }) },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === "string" ? redactText(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    opts.destination,
  );
}

/** A logger that writes nothing, for tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/**
 * Remembers the last failure of a repeating step so it is logged once per distinct
 * message: a loop failing every second during an outage must not flood the log.
 */
export class FailureMemo {
  private last: string | undefined;

  /** The current failure's message, or undefined after a success. */
  get message(): string | undefined {
    return this.last;
  }

  /** Records a failure; true when it differs from the previous one (log it). */
  failed(err: unknown): boolean {
    const msg = err instanceof Error ? err.message : String(err);
    const fresh = msg !== this.last;
    this.last = msg;
    return fresh;
  }

  succeeded(): void {
    this.last = undefined;
  }
}
