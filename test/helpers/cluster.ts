/**
 * A real cluster for tests: agent PROCESSES (configured by environment), one simulated
 * worker per agent (tools/sim-worker.ts, obeying the lease), and an observer that samples
 * every worker's served set many times a second. The agents run as the image runs them:
 * the Dockerfile's CMD, its node flags and the built dist/agent/main.js
 * (test/helpers/production-command.ts); dist/ is built first (`npm run build`) when it is
 * missing or older than a source, by the suites' global setup and again here if needed,
 * so they run the code under test.
 *
 * The workers live in the test process, beside (not inside) their agents: SIGSTOP of an
 * agent leaves its worker running, exactly like a frozen sidecar beside a live fingerv7.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../tools/ports.js";
import { SimWorker } from "../../tools/sim-worker.js";
import { ensureBuilt, productionCommand } from "./production-command.js";

export { freePort };

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface AgentProcess {
  readonly id: string;
  readonly port: number;
  readonly url: string;
  proc: ChildProcess;
  worker: SimWorker | undefined;
  /** What it was started with, so a restart keeps it. */
  readonly capacity: number;
  readonly env: Record<string, string>;
  log: string[];
  exited: Promise<number | null>;
}

export interface ClusterOptions {
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly prefix: string;
  /** Extra environment for every agent. */
  readonly env?: Record<string, string>;
}

export const FAST_TIMINGS: Record<string, string> = {
  HEARTBEAT_INTERVAL: "0.5",
  HEARTBEAT_TIMEOUT: "3",
  WORKER_LEASE: "1.8",
  LEADER_LEASE_TTL: "2",
  FALLBACK_GRACE: "5",
  HASH_SETTLE: "1",
  CATALOG_REFRESH: "1",
  DRAIN_TIMEOUT: "8",
};

export class Cluster {
  readonly agents = new Map<string, AgentProcess>();
  readonly observer: Observer;

  /** node's arguments for an agent: the production command. */
  readonly argv: readonly string[];

  constructor(private readonly o: ClusterOptions) {
    const { flags, main } = productionCommand();
    ensureBuilt(main, (line) => console.log(line));
    this.argv = [...flags, main];
    this.observer = new Observer(() => [...this.agents.values()].map((a) => ({ id: a.id, serving: a.worker?.serving ?? new Set() })));
  }

  async start(id: string, opts: { capacity?: number; env?: Record<string, string>; worker?: boolean; port?: number } = {}): Promise<AgentProcess> {
    const port = opts.port ?? (await freePort());
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      DATABASE_URL: this.o.databaseUrl,
      REDIS_URL: this.o.redisUrl,
      REDIS_KEY_PREFIX: this.o.prefix,
      INSTANCE_ID: id,
      MAX_STREAMS: String(opts.capacity ?? 100),
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: process.env.TEST_AGENT_LOG_LEVEL ?? "info",
      ...FAST_TIMINGS,
      ...this.o.env,
      ...opts.env,
    };
    const proc = spawn(process.execPath, this.argv, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    const log: string[] = [];
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n")) if (line) log.push(line);
      if (log.length > 5000) log.splice(0, log.length - 5000);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
    const existing = this.agents.get(id);
    const a: AgentProcess = { id, port, url: `http://127.0.0.1:${port}`, proc, worker: existing?.worker, log, exited, capacity: opts.capacity ?? 100, env: opts.env ?? {} };
    this.agents.set(id, a);
    await waitFor(async () => (await fetch(`${a.url}/health`).catch(() => undefined)) !== undefined, 30_000, `agent ${id} to listen`);
    if (opts.worker !== false) {
      if (a.worker) await a.worker.stop();
      a.worker = new SimWorker({ url: a.url, waitS: 5, reportEveryMs: 500 });
      a.worker.start();
    }
    return a;
  }

  get(id: string): AgentProcess {
    const a = this.agents.get(id);
    if (!a) throw new Error(`no agent ${id}`);
    return a;
  }

  signal(id: string, sig: NodeJS.Signals): void {
    this.get(id).proc.kill(sig);
  }

  /** kill -9, then wait for the process to be gone. The worker keeps running (and stops when its lease runs out). */
  async kill9(id: string): Promise<void> {
    const a = this.get(id);
    a.proc.kill("SIGKILL");
    await a.exited;
  }

  /** Restarts an agent (same id, port, capacity and settings unless given) after it exited; its worker is kept. */
  async restart(id: string, opts: { capacity?: number; env?: Record<string, string> } = {}): Promise<AgentProcess> {
    const a = this.get(id);
    return this.start(id, { capacity: opts.capacity ?? a.capacity, env: { ...a.env, ...opts.env }, port: a.port, worker: false });
  }

  async status(id: string, route = "/health"): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.get(id).url}${route}`);
    return (await res.json()) as Record<string, unknown>;
  }

  /** Which agent leads, according to any live agent. */
  async leader(): Promise<string | null> {
    for (const a of this.agents.values()) {
      if (a.proc.exitCode !== null || a.proc.signalCode !== null) continue;
      try {
        const h = await this.status(a.id);
        if (typeof h.leader === "string") return h.leader;
      } catch {
        // this one is down or stopped; ask the next
      }
    }
    return null;
  }

  async close(): Promise<void> {
    this.observer.stop();
    for (const a of this.agents.values()) {
      await a.worker?.stop();
      if (a.proc.exitCode === null && a.proc.signalCode === null) {
        a.proc.kill("SIGCONT");
        a.proc.kill("SIGKILL");
        await a.exited;
      }
    }
  }

  logs(id: string): string {
    return this.get(id).log.join("\n");
  }

  /** Until every stream is served and nothing has changed hands for `quietMs`. */
  async stable(what: string, quietMs = 3000, timeoutMs = 90_000): Promise<void> {
    let last = "";
    let since = performance.now();
    await waitFor(() => {
      const now = [...this.observer.served()].sort().join(",");
      if (now !== last) {
        last = now;
        since = performance.now();
      }
      return this.observer.unserved().length === 0 && performance.now() - since >= quietMs;
    }, timeoutMs, what, 50);
  }
}

export interface Overlap {
  readonly at: number;
  readonly stream: string;
  readonly workers: readonly string[];
}

/**
 * Samples every worker's served set every `everyMs`. Records every sample in which a
 * stream is served by two workers (must never happen) and, per stream, how long it has
 * been unserved.
 */
export class Observer {
  readonly overlaps: Overlap[] = [];
  samples = 0;
  private timer: NodeJS.Timeout | undefined;
  private unservedSince = new Map<string, number>();
  private catalog: readonly string[] = [];
  /** Longest unserved stretch seen per stream since the last reset, in ms. */
  longestGap = new Map<string, number>();

  constructor(private readonly workers: () => { id: string; serving: ReadonlySet<string> }[]) {}

  start(catalog: readonly string[], everyMs = 20): void {
    this.catalog = catalog;
    this.stop();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  setCatalog(catalog: readonly string[]): void {
    this.catalog = catalog;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  resetGaps(): void {
    this.longestGap.clear();
    const now = performance.now();
    for (const k of this.unservedSince.keys()) this.unservedSince.set(k, now);
  }

  /** Streams not served right now. */
  unserved(): string[] {
    const served = this.served();
    return this.catalog.filter((s) => !served.has(s));
  }

  served(): Map<string, string> {
    const out = new Map<string, string>();
    for (const w of this.workers()) for (const s of w.serving) out.set(s, w.id);
    return out;
  }

  maxGapMs(): number {
    let m = 0;
    for (const v of this.longestGap.values()) m = Math.max(m, v);
    const now = performance.now();
    for (const v of this.unservedSince.values()) m = Math.max(m, now - v);
    return m;
  }

  private sample(): void {
    this.samples++;
    const now = performance.now();
    const by = new Map<string, string[]>();
    for (const w of this.workers()) {
      for (const s of w.serving) {
        const list = by.get(s);
        if (list) list.push(w.id);
        else by.set(s, [w.id]);
      }
    }
    for (const [stream, ws] of by) if (ws.length > 1) this.overlaps.push({ at: now, stream, workers: ws });
    for (const s of this.catalog) {
      if (by.has(s)) {
        const since = this.unservedSince.get(s);
        if (since !== undefined) {
          this.longestGap.set(s, Math.max(this.longestGap.get(s) ?? 0, now - since));
          this.unservedSince.delete(s);
        }
      } else if (!this.unservedSince.has(s)) {
        this.unservedSince.set(s, now);
      }
    }
  }
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 50): Promise<number> {
  const t0 = performance.now();
  let lastErr: unknown;
  while (performance.now() - t0 < timeoutMs) {
    try {
      if (await check()) return performance.now() - t0;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${(lastErr as Error).message})` : ""}`);
}

/** True while any process of the process group `pgid` runs (a detached child's group is its pid). */
export function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
