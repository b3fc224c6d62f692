/**
 * Fleet benchmark (`npm run bench -- --fleet[=100,300,1000] [--fleet-streams=10000,100000]
 * [--fleet-interval=1] [--fleet-processes=P]`): what the coordination costs as the fleet
 * grows. The interval sets HEARTBEAT_INTERVAL, and HEARTBEAT_TIMEOUT and LEADER_LEASE_TTL
 * to five of it (the defaults' proportions).
 *
 * For each size: a private PostgreSQL (with pg_stat_statements when the server has it)
 * and a private Redis, N fleet members (bench/fleet-member.ts: the real heartbeat,
 * tracker, elector, leader loop and own-rows read, with fake workers) dealt out over P
 * child processes (bench/fleet-process.ts; by default one per 250 members), the members
 * of one process sharing its connections, then:
 * - time to full coverage from a cold start: every catalog stream held by exactly one
 *   member and every member within one stream of the others (equal capacities);
 * - over a steady window of STEADY_INTERVALS heartbeat intervals: Redis commands per
 *   member per interval from INFO commandstats deltas (every command, those run inside
 *   scripts included, INFO itself excluded) and the script calls among them; PostgreSQL
 *   statements per second (pg_stat_statements calls, or pg_stat_database xact_commit
 *   deltas when the extension is unavailable: the report says which); the leader's tick
 *   time (median); the CPU of the member processes per member;
 * - one member joining: the leader's longest tick until the newcomer holds its share, and
 *   the time from its start to holding it (end to end);
 * - memory: the member processes' RSS growth per member (a lower bound of an agent
 *   process's).
 * A size that does not reach coverage within the timeout is reported as such, with what
 * was measured until then. FLEET_PROFILE=dir writes a CPU profile of each member process,
 * FLEET_LOG=dir its members' log lines (bench/fleet-process.ts).
 * Measures, never asserts.
 */
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { Redis } from "ioredis";
import { connect } from "../shared/db.js";
import { closeRedis } from "../shared/redis.js";
import { migrate } from "../shared/schema.js";
import { privateServers } from "../test/helpers/private-servers.js";
import { epochNow, type FleetRequest, type FromChild, type ProcessSample, type ToChild } from "./fleet-process.js";

export interface FleetSize {
  readonly agents: number;
  readonly streams: number;
}

export interface FleetResult extends FleetSize {
  /** How many processes the members were spread over. */
  readonly processes: number;
  readonly intervalS: number;
  /** Seconds from the cold start to full, even coverage; null when not reached. */
  readonly coverageS: number | null;
  readonly redisCommandsPerAgentPerInterval: number;
  readonly redisScriptsPerAgentPerInterval: number;
  readonly pgStatementsPerS: number;
  readonly pgSource: "pg_stat_statements" | "xact_commit";
  readonly tickSteadyMs: number | null;
  readonly tickJoinMs: number | null;
  readonly joinEndToEndMs: number | null;
  readonly rssPerAgentMB: number;
  readonly cpuPerAgentPct: number;
  readonly note: string;
}

const STEADY_INTERVALS = 10;
const PREFIX = "fleet";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sum of calls per command from INFO commandstats. */
async function commandStats(redis: Redis): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await redis.info("commandstats")).split("\n")) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function redisDelta(a: Map<string, number>, b: Map<string, number>): { all: number; scripts: number } {
  let all = 0;
  let scripts = 0;
  for (const [cmd, n] of b) {
    if (cmd === "info") continue;
    const d = n - (a.get(cmd) ?? 0);
    all += d;
    if (cmd === "evalsha" || cmd === "eval" || cmd === "evalsha_ro" || cmd === "eval_ro") scripts += d;
  }
  return { all, scripts };
}

/** Turns pg_stat_statements on (a restart); false when this server does not have it. */
async function enableStatements(pg: { url: string; down(how?: "graceful"): Promise<void>; up(): Promise<void> }): Promise<boolean> {
  const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`alter system set shared_preload_libraries = 'pg_stat_statements'`);
    await admin.end();
    await pg.down("graceful");
    await pg.up();
    const again = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      await again.unsafe(`create extension if not exists pg_stat_statements`);
      await again.unsafe(`select pg_stat_statements_reset()`);
      return true;
    } finally {
      await again.end();
    }
  } catch {
    await admin.end().catch(() => {});
    return false;
  }
}

async function pgStatements(sql: postgres.Sql, statements: boolean): Promise<number> {
  if (statements) {
    const [r] = await sql.unsafe(`select coalesce(sum(calls), 0)::bigint as n from pg_stat_statements where query not like '%pg_stat%'`);
    return Number(r!.n);
  }
  const [r] = await sql.unsafe(`select xact_commit::bigint as n from pg_stat_database where datname = current_database()`);
  return Number(r!.n);
}

/**
 * Every stream held by exactly one member, every member within one stream of the others.
 * The counts first; the held ids only when the counts already say so.
 */
async function evenlyCovered(procs: readonly FleetProcess[], streams: number): Promise<boolean> {
  const counts = (await Promise.all(procs.map((p) => p.ask<number[]>({ t: "counts" })))).flat();
  let total = 0;
  let min = Infinity;
  let max = 0;
  for (const n of counts) {
    total += n;
    min = Math.min(min, n);
    max = Math.max(max, n);
  }
  if (total !== streams || max - min > 1) return false;
  const seen = new Set<string>();
  for (const held of await Promise.all(procs.map((p) => p.ask<string[]>({ t: "held" })))) for (const s of held) seen.add(s);
  return seen.size === streams;
}

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** A child process running some of the members (./fleet-process.ts), asked over IPC. */
class FleetProcess {
  readonly ids: string[];
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { resolve: (b: unknown) => void; reject: (e: Error) => void }>();
  private next = 0;
  private exited: string | undefined;

  constructor(ids: readonly string[], onTick: (at: number, ms: number) => void, onNote: (msg: string) => void) {
    this.ids = [...ids];
    const file = fileURLToPath(new URL(`./fleet-process${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));
    // --expose-gc: the memory figures are taken after a full collection.
    this.child = fork(file, [], { env: { ...process.env, FLEET_CHILD: "1" }, execArgv: [...process.execArgv, "--expose-gc"] });
    this.child.on("message", (m: FromChild) => {
      if (m.t === "tick") onTick(m.at, m.ms);
      else if (m.t === "note") onNote(m.msg);
      else {
        const w = this.waiting.get(m.req);
        this.waiting.delete(m.req);
        if (m.error !== undefined) w?.reject(new Error(m.error));
        else w?.resolve(m.body);
      }
    });
    this.child.on("exit", (code, signal) => {
      this.exited = `a fleet process exited (${signal ?? code})`;
      for (const w of this.waiting.values()) w.reject(new Error(this.exited));
      this.waiting.clear();
    });
  }

  ask<T>(m: FleetRequest): Promise<T> {
    if (this.exited) return Promise.reject(new Error(this.exited));
    const req = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(req, { resolve: resolve as (b: unknown) => void, reject });
      this.child.send({ ...m, req } satisfies ToChild);
    });
  }

  /** Stops the members (bounded by the child's own 30 s), then the process. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    await Promise.race([this.ask({ t: "stop" }).catch(() => {}), sleep(35_000)]);
    await Promise.race([gone, sleep(2_000)]);
    if (!this.exited) this.child.kill("SIGKILL");
  }
}

export async function runFleetSize(size: FleetSize, o: { intervalS: number; timeoutS: number; processes?: number; log: (line: string) => void }): Promise<FleetResult> {
  const { agents, streams } = size;
  const processes = Math.max(1, Math.min(agents, o.processes ?? defaultProcesses(agents)));
  const { pg, redis: redisServer, stop } = await privateServers(streams);
  const statements = await enableStatements(pg);
  const env = {
    DATABASE_URL: pg.url,
    REDIS_URL: redisServer.url,
    REDIS_KEY_PREFIX: PREFIX,
    REQUIRE_WORKER: "false",
    LOG_LEVEL: "silent",
    HEARTBEAT_INTERVAL: String(o.intervalS),
    // The defaults' proportions (5 s and 5 s at a 1 s interval) at any interval.
    HEARTBEAT_TIMEOUT: String(5 * o.intervalS),
    LEADER_LEASE_TTL: String(5 * o.intervalS),
  };
  const probe = postgres(pg.url, { max: 1, onnotice: () => {} });
  const sql = connect(pg.url, { max: 1 });
  const stats = new Redis(redisServer.url);
  const ticks: { at: number; ms: number }[] = [];
  const notes: string[] = [];
  const note = (msg: string) => void (notes.includes(msg) || notes.push(msg));
  const procs: FleetProcess[] = [];
  const all = <T>(m: FleetRequest) => Promise.all(procs.map((p) => p.ask<T>(m)));
  try {
    await migrate(sql, "orchestrator");
    const capacity = Math.ceil((1.5 * streams) / agents);
    const ids = Array.from({ length: agents }, (_, i) => `fl-${String(i).padStart(4, "0")}`);
    // The members dealt out in turn; one process's pools get a share of the one-process sizes (16 and 8), at least 4 and 2.
    for (let k = 0; k < processes; k++) procs.push(new FleetProcess(ids.filter((_, i) => i % processes === k), (at, ms) => ticks.push({ at, ms }), note));
    const pools = { sqlMax: Math.max(4, Math.ceil(16 / processes)), hbMax: Math.max(2, Math.ceil(8 / processes)) };
    const t0 = performance.now();
    const rss0 = (await Promise.all(procs.map((p) => p.ask<number>({ t: "start", env, ids: p.ids, capacity, pgUrl: pg.url, redisUrl: redisServer.url, prefix: PREFIX, ...pools })))).reduce((a, b) => a + b, 0);
    let coverageS: number | null = null;
    while (performance.now() - t0 < o.timeoutS * 1000) {
      if (await evenlyCovered(procs, streams)) {
        coverageS = (performance.now() - t0) / 1000;
        break;
      }
      await sleep(100);
    }
    if (coverageS === null) notes.push(`no even coverage within ${o.timeoutS} s`);
    o.log(`${agents} agents × ${streams} streams (${processes} process${processes > 1 ? "es" : ""}): coverage ${coverageS === null ? "not reached" : `${coverageS.toFixed(1)} s`}`);
    await sleep(2 * o.intervalS * 1000);

    const before = await all<ProcessSample>({ t: "sample" });
    const [r0, p0] = await Promise.all([commandStats(stats), pgStatements(probe, statements)]);
    const w0 = epochNow();
    await sleep(STEADY_INTERVALS * o.intervalS * 1000);
    const [r1, p1] = await Promise.all([commandStats(stats), pgStatements(probe, statements)]);
    const w1 = epochNow();
    const after = await all<ProcessSample>({ t: "sample" });
    const intervals = (w1 - w0) / (o.intervalS * 1000);
    const rd = redisDelta(r0, r1);
    const leading = after.reduce((n, s) => n + s.leading, 0);
    const elections = after.reduce((n, s) => n + s.elections, 0);
    if (leading === 0) notes.push(`no leader at the end of the steady window (${elections} terms so far)`);
    const errors = [...new Set(after.flatMap((s) => s.errors))];
    if (errors.length > 0) notes.push(`leader errors: ${errors.slice(0, 3).join(" | ")}`);
    const steadyTicks = ticks.filter((t) => t.at >= w0 && t.at <= w1).map((t) => t.ms);
    const cpuUs = after.reduce((n, s, k) => n + s.cpuUs - before[k]!.cpuUs, 0);
    const rss = before.reduce((n, s) => n + s.rss, 0);

    let tickJoinMs: number | null = null;
    let joinEndToEndMs: number | null = null;
    if (coverageS !== null) {
      // The newcomer joins the process with the fewest members (the last one when they do not divide evenly).
      const home = procs.reduce((a, b) => (b.ids.length < a.ids.length ? b : a));
      home.ids.push("fl-join");
      const share = Math.floor(streams / (agents + 1));
      const held = async () => (await home.ask<number[]>({ t: "counts" })).at(-1) ?? 0;
      const j0 = epochNow();
      await home.ask({ t: "join", id: "fl-join" });
      while (epochNow() - j0 < 60_000 && (await held()) < share) await sleep(10);
      const j1 = epochNow();
      if ((await held()) >= share) {
        joinEndToEndMs = j1 - j0;
        const during = ticks.filter((t) => t.at >= j0 && t.at <= j1).map((t) => t.ms);
        tickJoinMs = during.length > 0 ? Math.max(...during) : null;
      } else notes.push("the newcomer did not get its share within 60 s");
    }
    return {
      agents,
      streams,
      processes,
      intervalS: o.intervalS,
      coverageS,
      redisCommandsPerAgentPerInterval: rd.all / agents / intervals,
      redisScriptsPerAgentPerInterval: rd.scripts / agents / intervals,
      pgStatementsPerS: ((p1 - p0) * 1000) / (w1 - w0),
      pgSource: statements ? "pg_stat_statements" : "xact_commit",
      tickSteadyMs: median(steadyTicks),
      tickJoinMs,
      joinEndToEndMs,
      rssPerAgentMB: (rss - rss0) / agents / 2 ** 20,
      cpuPerAgentPct: (100 * cpuUs) / 1000 / (w1 - w0) / agents,
      note: notes.join("; "),
    };
  } finally {
    await Promise.allSettled(procs.map((p) => p.stop()));
    await closeRedis(stats).catch(() => {});
    await Promise.allSettled([sql.end({ timeout: 2 }), probe.end({ timeout: 2 })]);
    await stop();
  }
}

/** One process per 250 members: 1 for 100, 2 for 300, 4 for 1,000. */
export const defaultProcesses = (agents: number): number => Math.max(1, Math.ceil(agents / 250));

export async function runFleet(sizes: readonly FleetSize[], o: { intervalS: number; timeoutS: number; processes?: number; log: (line: string) => void }): Promise<FleetResult[]> {
  const out: FleetResult[] = [];
  for (const s of sizes) {
    const r = await runFleetSize(s, o);
    o.log(
      `${r.agents} agents × ${r.streams} streams: Redis ${r.redisCommandsPerAgentPerInterval.toFixed(1)} commands (${r.redisScriptsPerAgentPerInterval.toFixed(2)} scripts)/agent/interval, ` +
        `PostgreSQL ${r.pgStatementsPerS.toFixed(0)} statements/s (${r.pgSource}), tick ${r.tickSteadyMs?.toFixed(1) ?? "—"} ms, join tick ${r.tickJoinMs?.toFixed(1) ?? "—"} ms, ` +
        `join ${r.joinEndToEndMs?.toFixed(0) ?? "—"} ms, ${r.rssPerAgentMB.toFixed(2)} MB/agent, CPU ${r.cpuPerAgentPct.toFixed(2)} %/agent ${r.note}`,
    );
    out.push(r);
  }
  return out;
}
