/**
 * A private redis-server whose wall clock the test can step while it runs: it is started
 * under libfaketime (Debian package `faketime`) with FAKETIME_TIMESTAMP_FILE and
 * FAKETIME_NO_CACHE=1, so every clock read re-reads the offset the test writes there.
 * Only the wall clock is faked (FAKETIME_DONT_FAKE_MONOTONIC=1): that is the clock Redis
 * dates key expiry and TIME by.
 *
 * Guarantees:
 * - A missing libfaketime or redis-server is an error naming the package to install,
 *   never a skip.
 * - `step()` returns only once Redis's TIME shows the new offset (within 2 s), so the
 *   step is proven, not assumed.
 * - Debian's redis-server allocates with jemalloc, which hangs at start under libfaketime
 *   (libfaketime's dlsym → calloc → jemalloc → clock_gettime recursion). glibc's
 *   allocator is then preloaded after libfaketime, so malloc/free resolve to glibc;
 *   Redis's own jemalloc calls (stats) still work on an allocator it never used.
 * - It listens on 127.0.0.1 only, in its own temporary directory, removed by stop().
 * It does not fake the clocks of anything else (agents, PostgreSQL, the test).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort } from "../../tools/ports.js";
import { findRedisServer, knownRedisDirs, redisAnswers } from "../../tools/throwaway-services.js";

const LIB_DIRS = ["/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime", "/usr/lib/faketime", "/usr/local/lib/faketime", "/usr/lib64/faketime"];

/** libfaketimeMT.so.1 (Redis runs threads), or a clear error. */
export function findLibfaketime(dirs: readonly string[] = LIB_DIRS): string {
  const lib = dirs.map((d) => path.join(d, "libfaketimeMT.so.1")).find((f) => fs.existsSync(f));
  if (!lib) throw new Error(`libfaketime is required for the Redis clock-step scenario and was not found in ${dirs.join(", ")}; Debian: apt-get install faketime`);
  return lib;
}

/** The libc that `bin` links, when it also links jemalloc (see the header); undefined otherwise. */
function glibcForJemalloc(bin: string): string | undefined {
  let out = "";
  try {
    out = execFileSync("ldd", [bin], { encoding: "utf8" });
  } catch {
    return undefined;
  }
  if (!/libjemalloc/.test(out)) return undefined;
  return /libc\.so\.6 => (\S+)/.exec(out)?.[1];
}

export class ClockedRedis {
  private constructor(
    readonly port: number,
    private readonly root: string,
    private readonly spec: string,
    private readonly proc: ChildProcess,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Offset of Redis's wall clock from the real one, in seconds (as last set). */
  offsetS = 0;

  static async start(): Promise<ClockedRedis> {
    const lib = findLibfaketime();
    const bin = findRedisServer(knownRedisDirs(process.env));
    if (!bin) throw new Error("redis-server is required for the Redis clock-step scenario and is not on PATH; Debian: apt-get install redis-server");
    const libc = glibcForJemalloc(bin);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "fingerv7-clocked-redis-"));
    const spec = path.join(root, "faketime");
    fs.writeFileSync(spec, "+0\n");
    const port = await freePort();
    const proc = spawn(bin, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", root, "--logfile", path.join(root, "redis.log")], {
      cwd: root,
      detached: true,
      stdio: "ignore",
      env: {
        PATH: process.env.PATH ?? "",
        LD_PRELOAD: [lib, libc].filter(Boolean).join(":"),
        FAKETIME_TIMESTAMP_FILE: spec,
        FAKETIME_NO_CACHE: "1",
        FAKETIME_DONT_FAKE_MONOTONIC: "1",
      },
    });
    const r = new ClockedRedis(port, root, spec, proc);
    const t0 = Date.now();
    let why: string | undefined = "not started";
    while (Date.now() - t0 < 15_000 && proc.exitCode === null) {
      why = await redisAnswers(r.url);
      if (why === undefined) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    if (why !== undefined) {
      await r.stop();
      throw new Error(`redis-server under libfaketime did not answer within 15 s (${why}); log: ${r.logTail()}`);
    }
    await r.step(0);
    return r;
  }

  /** Redis's TIME minus the real time, in seconds. */
  async measuredOffsetS(): Promise<number> {
    const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on("error", () => {});
    try {
      await c.connect();
      const [s, us] = (await c.time()) as [string | number, string | number];
      return Number(s) + Number(us) / 1e6 - Date.now() / 1000;
    } finally {
      c.disconnect();
    }
  }

  /** Sets Redis's wall clock to the real time + `offsetS` seconds, and checks TIME shows it. */
  async step(offsetS: number): Promise<number> {
    fs.writeFileSync(this.spec, `${offsetS >= 0 ? "+" : ""}${offsetS}s\n`);
    this.offsetS = offsetS;
    let seen = NaN;
    for (let i = 0; i < 20; i++) {
      seen = await this.measuredOffsetS();
      if (Math.abs(seen - offsetS) < 2) return seen;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`Redis's clock did not follow the step to ${offsetS} s (TIME is ${seen.toFixed(1)} s off the real time)`);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const gone = new Promise((res) => this.proc.once("exit", res));
      this.proc.kill("SIGKILL");
      await gone;
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }

  private logTail(): string {
    try {
      return fs.readFileSync(path.join(this.root, "redis.log"), "utf8").trim().split("\n").slice(-3).join(" | ");
    } catch {
      return "(no log)";
    }
  }
}
