/**
 * Private PostgreSQL and Redis servers on free ports, for the tests that stop and
 * restart them. Binaries come from the machine (Debian packages): redis-server on PATH,
 * PostgreSQL from /usr/lib/postgresql/<version>/bin. Missing binaries fail loudly.
 *
 * PostgreSQL refuses to run as root, so when the tests run as root the server runs as
 * the `postgres` system user (runuser).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import postgres from "postgres";
import { freePort, waitFor } from "./cluster.js";
import { createCatalog } from "./services.js";

function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const p = path.join(dir, bin);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

export class PrivateRedis {
  private proc: ChildProcess | undefined;
  readonly url: string;
  private constructor(readonly port: number) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  static async start(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort());
    await r.up();
    return r;
  }

  /** Starts (again) on the same port, with no data: like a Redis restart without persistence. */
  async up(): Promise<void> {
    const bin = which("redis-server");
    if (!bin) throw new Error("redis-server is not on PATH; install the Debian package redis-server");
    this.proc = spawn(bin, ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"], { stdio: "ignore" });
    await waitFor(() => {
      try {
        return execFileSync("redis-cli", ["-p", String(this.port), "ping"], { stdio: ["ignore", "pipe", "ignore"] }).toString().includes("PONG");
      } catch {
        return false;
      }
    }, 10_000, `private redis on ${this.port}`);
  }

  async down(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.on("exit", r));
    p.kill("SIGCONT");
    p.kill("SIGKILL");
    await exited;
  }

  /** Freezes the server (SIGSTOP): connections stay open, commands time out. */
  freeze(): void {
    this.proc?.kill("SIGSTOP");
  }

  thaw(): void {
    this.proc?.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    await this.down();
  }
}

export class PrivatePostgres {
  readonly url: string;
  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly bin: string,
  ) {
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  static async start(): Promise<PrivatePostgres> {
    const versions = fs.existsSync("/usr/lib/postgresql") ? fs.readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a)) : [];
    const bin = versions.map((v) => `/usr/lib/postgresql/${v}/bin`).find((d) => fs.existsSync(path.join(d, "initdb")));
    if (!bin) throw new Error("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; install the Debian package postgresql");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fv7-pg-"));
    fs.chmodSync(dir, 0o777);
    const pg = new PrivatePostgres(await freePort(), path.join(dir, "data"), bin);
    pg.run(path.join(bin, "initdb"), ["-D", pg.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
    await pg.up();
    return pg;
  }

  private asPostgres(cmd: string, args: string[]): [string, string[]] {
    return process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
  }

  private run(cmd: string, args: string[]): void {
    const [c, a] = this.asPostgres(cmd, args);
    execFileSync(c, a, { stdio: "ignore" });
  }

  async up(): Promise<void> {
    const opts = `-p ${this.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
    this.run(path.join(this.bin, "pg_ctl"), ["-D", this.dir, "-o", opts, "-l", path.join(path.dirname(this.dir), "log"), "-w", "-t", "30", "start"]);
    await waitFor(() => {
      try {
        execFileSync(path.join(this.bin, "pg_isready"), ["-h", "127.0.0.1", "-p", String(this.port), "-q"]);
        return true;
      } catch {
        return false;
      }
    }, 30_000, `private postgres on ${this.port}`);
  }

  /** Stops the server at once (immediate shutdown: connections drop, like a crash). */
  async down(): Promise<void> {
    try {
      this.run(path.join(this.bin, "pg_ctl"), ["-D", this.dir, "-m", "immediate", "-w", "-t", "30", "stop"]);
    } catch {
      // already stopped
    }
  }

  async stop(): Promise<void> {
    await this.down();
    fs.rmSync(path.dirname(this.dir), { recursive: true, force: true });
  }
}

/** A private PostgreSQL (with a `streams` catalog of n rows) and a private Redis, started together. */
export async function privateServers(streams: number): Promise<{ pg: PrivatePostgres; redis: PrivateRedis; stop: () => Promise<void> }> {
  const [pg, redis] = await Promise.all([PrivatePostgres.start(), PrivateRedis.start()]);
  const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
  await createCatalog(sql, streams);
  await sql.end();
  return { pg, redis, stop: async () => void (await Promise.allSettled([pg.stop(), redis.stop()])) };
}
