/**
 * A cluster for the fault suite: real agent processes running the production command
 * (the Dockerfile's CMD on the built dist/: test/helpers/cluster.ts, FAST_TIMINGS)
 * on a fresh database and Redis prefix, each agent reaching Redis and PostgreSQL only
 * through a FaultProxy of its own (its REDIS_URL and DATABASE_URL name 127.0.0.1 proxy
 * ports), one recording worker per agent (test/helpers/fault-workers.ts) feeding a
 * ServedLog. Every fault, heal, kill and drain is written to the log's events.
 *
 * Process faults go through the same agent processes: kill -9, SIGSTOP/SIGCONT, and a
 * restart of an agent (same id, port and settings) while its worker keeps running. A
 * stream fault: a worker made deaf to one stream (it reports failures; the log no longer
 * counts that worker as hearing it).
 *
 * Guarantees: nothing outside loopback is touched; close() stops every worker, agent
 * and proxy it started and drops its database and keys.
 */
import path from "node:path";
import { APPLICATION_NAME } from "../../shared/db.js";
import { Cluster, FAST_TIMINGS, waitFor } from "./cluster.js";
import { FaultProxy, type Direction } from "./fault-proxy.js";
import { LeaseWorker, LegacyWorker, Rng, type FaultWorker } from "./fault-workers.js";
import { agreement, ServedLog, type ClusterAnswer } from "./served-checker.js";
import { REDIS_URL, clearPrefix, connectTestRedis, createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "./services.js";

export const ADMIN_TOKEN = "change-me-fault-admin-token";
/** The agents' sessions of this cluster's database, as a pg_stat_activity condition. */
export const AGENT_SESSIONS = `application_name = '${APPLICATION_NAME}' and datname = current_database()`;
export const SECONDS = (k: string): number => Number(FAST_TIMINGS[k]) * 1000;

export type Store = "redis" | "pg";
export type FaultAction = "blackhole" | "resetThenBlackhole" | "refuse" | { oneWayLoss: Direction } | { latency: number };

export interface FaultClusterOptions {
  readonly seed: number;
  readonly agents?: number;
  readonly streams?: number;
  readonly capacity?: number;
  /** Which kind of worker runs beside agent i (default: lease-obeying /v1 workers). */
  readonly workerKind?: (i: number) => "lease" | "legacy";
  readonly leaseStopMs?: readonly [number, number];
  readonly legacyStopLateMs?: readonly [number, number];
  readonly legacyPollMs?: readonly [number, number];
  /** Extra environment for every agent. */
  readonly env?: Record<string, string>;
  /** The Redis behind every agent's Redis proxy (default: the test Redis). */
  readonly redisUrl?: string;
}

function hostPort(url: string, fallbackPort: number): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || fallbackPort) };
}

export class FaultCluster {
  readonly ids: string[];
  readonly log: ServedLog;
  readonly rng: Rng;
  readonly proxies = new Map<string, Record<Store, FaultProxy>>();
  readonly workers = new Map<string, FaultWorker>();
  readonly killed = new Set<string>();
  readonly frozen = new Set<string>();
  private cluster!: Cluster;
  private db!: TestDatabase;
  private prefix = uniqueName("faults");

  private constructor(readonly o: FaultClusterOptions) {
    this.ids = Array.from({ length: o.agents ?? 3 }, (_, i) => `f${i + 1}`);
    this.log = new ServedLog(o.seed, Array.from({ length: o.streams ?? 30 }, (_, i) => String(i + 1)));
    this.rng = new Rng(o.seed);
  }

  static async start(o: FaultClusterOptions): Promise<FaultCluster> {
    const fc = new FaultCluster(o);
    try {
      await fc.boot();
    } catch (err) {
      await fc.close();
      throw err;
    }
    return fc;
  }

  private async boot(): Promise<void> {
    this.db = await createTestDatabase("faults");
    await createCatalog(this.db.sql, this.log.catalog.length);
    this.cluster = new Cluster({ databaseUrl: this.db.url, redisUrl: this.redisUrl, prefix: this.prefix, env: { ADMIN_TOKEN, ...this.o.env } });
    const redisUp = hostPort(this.redisUrl, 6379);
    const pgUp = hostPort(this.db.url, 5432);
    for (const id of this.ids) {
      const redis = await FaultProxy.start({ upstreamHost: redisUp.host, upstreamPort: redisUp.port, name: `${id}/redis` });
      const pg = await FaultProxy.start({ upstreamHost: pgUp.host, upstreamPort: pgUp.port, name: `${id}/pg` });
      this.proxies.set(id, { redis, pg });
    }
    this.log.event(`seed ${this.o.seed}: ${this.ids.length} agents × capacity ${this.o.capacity ?? 20}, ${this.log.catalog.length} streams, timings ${JSON.stringify({ ...FAST_TIMINGS, ...Object.fromEntries(Object.entries(this.o.env ?? {}).filter(([k]) => k in FAST_TIMINGS || k.endsWith("_TIMEOUT") || k.endsWith("_LEASE"))) })}, command node ${this.cluster.argv.map((a) => (path.isAbsolute(a) ? path.relative(process.cwd(), a) : a)).join(" ")}`);
    // One at a time, with a retry: a safeguard for a loaded 2-core machine, where three
    // start-ups at once from the TypeScript sources once took longer than the cluster
    // helper's 30 s wait for an agent to listen (the built agent listens in about 0.6 s).
    for (const id of this.ids) {
      const p = this.proxies.get(id)!;
      const dbUrl = new URL(this.db.url);
      dbUrl.hostname = "127.0.0.1";
      dbUrl.port = String(p.pg.port);
      const opts = { capacity: this.o.capacity ?? 20, worker: false, env: { REDIS_URL: `redis://127.0.0.1:${p.redis.port}`, DATABASE_URL: dbUrl.toString() } };
      for (let attempt = 1; ; attempt++) {
        try {
          await this.cluster.start(id, opts);
          break;
        } catch (err) {
          const a = this.cluster.agents.get(id);
          if (a && a.proc.exitCode === null && a.proc.signalCode === null) {
            a.proc.kill("SIGKILL");
            await a.exited;
          }
          if (attempt >= 3) throw err;
          this.log.event(`agent ${id} slow to start (${(err as Error).message}); retrying`);
        }
      }
    }
    this.ids.forEach((id, i) => {
      const url = this.cluster.get(id).url;
      const rng = new Rng(this.o.seed * 31 + i + 1);
      const w: FaultWorker =
        (this.o.workerKind?.(i) ?? "lease") === "legacy"
          ? new LegacyWorker({ id, url, log: this.log, rng, capacity: this.o.capacity ?? 20, pollMs: this.o.legacyPollMs, stopLateMs: this.o.legacyStopLateMs })
          : new LeaseWorker({ id, url, log: this.log, rng, stopMs: this.o.leaseStopMs });
      this.workers.set(id, w);
      w.start();
    });
  }

  get redisUrl(): string {
    return this.o.redisUrl ?? REDIS_URL;
  }

  /** Agents that answer: neither killed nor frozen. */
  live(): string[] {
    return this.ids.filter((id) => !this.killed.has(id) && !this.frozen.has(id));
  }

  async json(id: string, route: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.cluster.get(id).url}${route}`, { signal: AbortSignal.timeout(4000) });
    return (await res.json()) as Record<string, unknown>;
  }

  /** A ready leader that every live agent names. */
  async leader(timeoutMs = 60_000): Promise<string> {
    let found: string | undefined;
    await waitFor(async () => {
      const views = await Promise.all(this.live().map((id) => this.json(id, "/status")));
      const ls = views.map((v) => v.leader as { id: string; ready: boolean } | null);
      found = ls[0]?.ready && ls.every((l) => l?.id === ls[0]!.id) ? ls[0].id : undefined;
      return found !== undefined;
    }, timeoutMs, "a ready leader named by every agent", 200);
    return found!;
  }

  /** The test's own connection to the cluster's database (not through any agent's proxy). */
  get sql(): TestDatabase["sql"] {
    return this.db.sql;
  }

  /**
   * Holds the rows `lockQuery` selects FOR UPDATE (in the test's own transaction) until an
   * agent's transaction waits for them (its BEGIN before the waiting statement, whose text
   * contains `waitingFor`), then runs `then` and lets the rows go. `meanwhile` runs once
   * the rows are held. The way to catch an agent's write inside its transaction.
   */
  async holdUntilWaiting<T>(lockQuery: string, params: readonly string[], waitingFor: string, what: string, then: () => Promise<T>, meanwhile?: () => Promise<unknown>): Promise<T> {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held!: () => void;
    const isHeld = new Promise<void>((r) => (held = r));
    const holder = this.sql.begin(async (tx) => {
      await tx.unsafe(lockQuery, params as string[]);
      held();
      await released;
    });
    try {
      await isHeld;
      await meanwhile?.();
      await waitFor(
        async () =>
          (
            await this.sql.unsafe(
              `select 1 from pg_stat_activity where ${AGENT_SESSIONS} and wait_event_type = 'Lock' and xact_start < query_start and query like $1`,
              [`%${waitingFor}%`],
            )
          ).length > 0,
        20_000,
        what,
        20,
      );
      return await then();
    } finally {
      release();
      await holder;
    }
  }

  /**
   * Agents whose process ended although the scenario did not kill it:
   * a crash. Each with its exit code or signal and its last lines of output.
   */
  unexpectedExits(): string[] {
    return this.ids.flatMap((id) => {
      const a = this.cluster.agents.get(id);
      if (!a || this.killed.has(id) || (a.proc.exitCode === null && a.proc.signalCode === null)) return [];
      return [`agent ${id} exited on its own (code ${a.proc.exitCode}, signal ${a.proc.signalCode}); its last output:\n${a.log.slice(-40).join("\n")}`];
    });
  }

  followers(leader: string): string[] {
    return this.live().filter((id) => id !== leader);
  }

  /** Every stream with exactly one worker and nothing changing hands for `quietMs`. */
  async stable(what: string, quietMs = 3000, timeoutMs = 90_000): Promise<void> {
    let last = "";
    let since = performance.now();
    await waitFor(() => {
      const owners = this.log.owners();
      const now = [...owners].map(([s, w]) => `${s}=${w.join("+")}`).join(",");
      if (now !== last) {
        last = now;
        since = performance.now();
      }
      return [...owners.values()].every((w) => w.length === 1) && performance.now() - since >= quietMs;
    }, timeoutMs, what, 50);
  }

  proxy(id: string, store: Store): FaultProxy {
    const p = this.proxies.get(id)?.[store];
    if (!p) throw new Error(`no ${store} proxy for ${id}`);
    return p;
  }

  /** Applies a fault to one agent's link to one store and records it. */
  async fault(id: string, store: Store, action: FaultAction, role = ""): Promise<number> {
    const p = this.proxy(id, store);
    if (action === "blackhole") await p.blackhole();
    else if (action === "resetThenBlackhole") await p.resetThenBlackhole();
    else if (action === "refuse") await p.refuse();
    else if ("oneWayLoss" in action) await p.oneWayLoss(action.oneWayLoss);
    else p.latency(action.latency);
    const at = this.log.now();
    const label = typeof action === "string" ? action : "oneWayLoss" in action ? `oneWayLoss(${action.oneWayLoss})` : `latency(${action.latency}ms)`;
    this.log.event(`FAULT ${id}${role ? ` (${role})` : ""} ${store}: ${label} → now ${p.describe()}`, at);
    return at;
  }

  /** Heals one agent's link to one store (pass, no latency) and records it. */
  async heal(id: string, store: Store): Promise<number> {
    const p = this.proxy(id, store);
    p.latency(0);
    await p.pass();
    const at = this.log.now();
    this.log.event(`HEAL ${id} ${store}`, at);
    return at;
  }

  /** Makes `id`'s worker deaf to `stream` (it reports failures; the log stops counting it as heard). */
  deafen(id: string, stream: string): number {
    const w = this.workers.get(id);
    if (!(w instanceof LeaseWorker)) throw new Error(`${id}'s worker cannot be made deaf (not a /v1 worker)`);
    w.deafen(stream);
    const at = this.log.now();
    this.log.cannotHear(id, stream, at);
    this.log.event(`FAULT ${id}'s worker cannot hear stream ${stream}`, at);
    return at;
  }

  async kill9(id: string, role = ""): Promise<number> {
    await this.cluster.kill9(id);
    this.killed.add(id);
    const at = this.log.now();
    this.log.event(`KILL -9 ${id}${role ? ` (${role})` : ""}`, at);
    return at;
  }

  /** SIGSTOP: the agent freezes (connections stay open); its worker keeps running. */
  sigstop(id: string, role = ""): number {
    this.cluster.signal(id, "SIGSTOP");
    this.frozen.add(id);
    const at = this.log.now();
    this.log.event(`SIGSTOP ${id}${role ? ` (${role})` : ""}`, at);
    return at;
  }

  sigcont(id: string): number {
    this.cluster.signal(id, "SIGCONT");
    this.frozen.delete(id);
    const at = this.log.now();
    this.log.event(`SIGCONT ${id}`, at);
    return at;
  }

  /**
   * Starts a killed agent again (same id, port, proxies and settings); its worker, which
   * kept running all along, finds it at the same address. Resolves once it listens.
   */
  async restart(id: string): Promise<number> {
    if (!this.killed.has(id)) throw new Error(`restart ${id}: it was not killed`);
    this.log.event(`RESTART ${id}: starting a new process`);
    await this.cluster.restart(id);
    this.killed.delete(id);
    const at = this.log.now();
    this.log.event(`RESTART ${id}: the new process listens`, at);
    return at;
  }

  /** Sends one agent's new Redis connections to another Redis on this machine (its current ones are reset). */
  redirectRedis(id: string, url: string, role = ""): number {
    const p = this.proxy(id, "redis");
    p.retarget(hostPort(url, 6379).port);
    const at = this.log.now();
    this.log.event(`REDIS ${id}${role ? ` (${role})` : ""} now reaches ${url} (proxy ${p.describe()})`, at);
    return at;
  }

  async drain(id: string): Promise<number> {
    const live = this.live();
    const via = live.find((x) => x !== id) ?? id;
    const res = await fetch(`${this.cluster.get(via).url}/instances/${id}/drain`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: "fault suite" }),
    });
    if (!res.ok) throw new Error(`drain ${id}: HTTP ${res.status} ${await res.text()}`);
    const at = this.log.now();
    this.log.event(`DRAIN ${id} (via ${via})`, at);
    return at;
  }

  /** GET /status and /streams/status of the first live agent that answers. */
  async answer(): Promise<ClusterAnswer> {
    let lastErr: unknown;
    for (const id of this.live()) {
      try {
        const st = await this.json(id, "/status");
        const ss = await this.json(id, "/streams/status");
        const totals = st.streams as { unassigned: number; revoking: number };
        const leader = st.leader as { ready: boolean } | null;
        const dist = new Map<string, Set<string>>();
        for (const d of ss.distribution as { instance_id: string; streams: (string | number)[] }[]) dist.set(d.instance_id, new Set(d.streams.map(String)));
        return { leaderReady: !!leader?.ready, unassigned: totals.unassigned, revoking: totals.revoking, distribution: dist };
      } catch (err) {
        lastErr = err;
      }
    }
    throw new Error(`no live agent answered /status: ${(lastErr as Error)?.message}`);
  }

  /**
   * Polls until the record has exactly one worker per stream and the cluster's answer
   * agrees with it, for `withinMs`. Returns the time it took, or the last differences.
   */
  async converge(from: number, withinMs: number): Promise<{ ms: number } | { differences: string[] }> {
    let diff: string[] = ["not checked yet"];
    while (performance.now() - from < withinMs) {
      try {
        diff = agreement(this.log, await this.answer(), this.ids);
      } catch (err) {
        diff = [(err as Error).message];
      }
      if (diff.length === 0) return { ms: performance.now() - from };
      await new Promise((r) => setTimeout(r, 250));
    }
    return { differences: diff };
  }

  /** Agent log lines worth showing for a failure (balance, instance, warnings). */
  agentLog(id: string, lines = 25): string {
    const out: string[] = [];
    let last = "";
    for (const l of this.cluster.logs(id).split("\n")) {
      let j: Record<string, unknown>;
      try {
        j = JSON.parse(l) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (j.category === "STARTUP" || !(j.level === "warn" || j.level === "error" || j.category === "BALANCE" || j.category === "INSTANCE")) continue;
      const { level, time, instance: _i, category, msg, err, pid: _p, hostname: _h, component, ...rest } = j;
      const e = (err as { message?: string } | undefined)?.message;
      const line = `${String(time).slice(11, 23)} ${level} ${category ?? ""}${component ? `/${component}` : ""} ${msg}${e ? ` (${e})` : ""} ${JSON.stringify(rest)}`.slice(0, 300);
      if (line.slice(13) === last) continue;
      last = line.slice(13);
      out.push(line);
    }
    return out.slice(-lines).join("\n");
  }

  async close(): Promise<void> {
    for (const w of this.workers.values()) await w.stop().catch(() => {});
    await this.cluster?.close().catch(() => {});
    for (const p of this.proxies.values()) {
      await p.redis.close().catch(() => {});
      await p.pg.close().catch(() => {});
    }
    const r = await connectTestRedis(this.redisUrl).catch(() => undefined);
    if (r) {
      await clearPrefix(r, this.prefix).catch(() => {});
      r.disconnect();
    }
    await this.db?.drop().catch(() => {});
  }
}
