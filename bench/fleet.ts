/**
 * Fleet benchmark (`npm run bench -- --fleet[=100,300,1000] [--fleet-streams=10000,100000]
 * [--fleet-interval=1]`): what the coordination costs as the fleet grows. The interval
 * sets HEARTBEAT_INTERVAL, and HEARTBEAT_TIMEOUT and LEADER_LEASE_TTL to five of it (the
 * defaults' proportions).
 *
 * For each size: a private PostgreSQL (with pg_stat_statements when the server has it)
 * and a private Redis, N fleet members in this process (bench/fleet-member.ts: the real
 * heartbeat, tracker, elector, leader loop and own-rows read, with shared connections and
 * fake workers), then:
 * - time to full coverage from a cold start: every catalog stream held by exactly one
 *   member and every member within one stream of the others (equal capacities);
 * - over a steady window of STEADY_INTERVALS heartbeat intervals: Redis commands per
 *   member per interval from INFO commandstats deltas (every command, those run inside
 *   scripts included, INFO itself excluded) and the script calls among them; PostgreSQL
 *   statements per second (pg_stat_statements calls, or pg_stat_database xact_commit
 *   deltas when the extension is unavailable: the report says which); the leader's tick
 *   time (median); CPU of this process per member;
 * - one member joining: the leader's longest tick until the newcomer holds its share, and
 *   the time from its start to holding it (end to end);
 * - memory: this process's RSS growth per member (a lower bound of an agent process's).
 * A size that does not reach coverage within the timeout is reported as such, with what
 * was measured until then. Measures, never asserts.
 */
import postgres from "postgres";
import { Redis } from "ioredis";
import { systemClock } from "../shared/clock.js";
import { connect } from "../shared/db.js";
import { silentLogger } from "../shared/logger.js";
import { Metrics } from "../shared/metrics.js";
import { createRedis, closeRedis } from "../shared/redis.js";
import { migrate } from "../shared/schema.js";
import { privateServers } from "../test/helpers/private-servers.js";
import { FleetMember, type FleetShared } from "./fleet-member.js";

export interface FleetSize {
  readonly agents: number;
  readonly streams: number;
}

export interface FleetResult extends FleetSize {
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

/** Every stream held by exactly one member, every member within one stream of the others. */
function evenlyCovered(members: readonly FleetMember[], streams: number): boolean {
  let total = 0;
  let min = Infinity;
  let max = 0;
  for (const m of members) {
    total += m.held.length;
    min = Math.min(min, m.held.length);
    max = Math.max(max, m.held.length);
  }
  if (total !== streams || max - min > 1) return false;
  const seen = new Set<string>();
  for (const m of members) for (const s of m.held) seen.add(s);
  return seen.size === streams;
}

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

export async function runFleetSize(size: FleetSize, o: { intervalS: number; timeoutS: number; log: (line: string) => void }): Promise<FleetResult> {
  const { agents, streams } = size;
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
  const sql = connect(pg.url, { max: 16 });
  const hbSql = connect(pg.url, { max: 8 });
  // A real agent has its own Redis connection: one client per 25 members keeps the queues short.
  const clients = Array.from({ length: Math.ceil(agents / 25) + 1 }, () => createRedis(redisServer.url, { commandTimeoutMs: 1000 }));
  const sub = createRedis(redisServer.url, { commandTimeoutMs: 1000, subscriber: true });
  const stats = new Redis(redisServer.url);
  const metrics = new Metrics({ instance: "fleet" });
  const ticks: { at: number; ms: number }[] = [];
  const observe = metrics.leaderTickSeconds.observe.bind(metrics.leaderTickSeconds);
  metrics.leaderTickSeconds.observe = ((v: number) => {
    ticks.push({ at: performance.now(), ms: v * 1000 });
    observe(v);
  }) as typeof metrics.leaderTickSeconds.observe;
  const members: FleetMember[] = [];
  const notes: string[] = [];
  // A store overwhelmed by the fleet may drop connections: say so in the result instead of ending the run.
  const dropped = (err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    if (!notes.includes(msg)) notes.push(msg);
  };
  process.on("unhandledRejection", dropped);
  try {
    await migrate(sql, "orchestrator");
    const base = (k: number): FleetShared => ({ env, clock: systemClock, logger: silentLogger(), metrics, sql, hbSql, redis: clients[k % clients.length]! });
    const capacity = Math.ceil((1.5 * streams) / agents);
    sub.on("message", (_c: string, message: string) => {
      for (const m of members) m.nudge(message);
    });
    await sub.subscribe(`${PREFIX}:events`);
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    for (let i = 0; i < agents; i++) members.push(new FleetMember(base(i), `fl-${String(i).padStart(4, "0")}`, capacity));
    await Promise.all(members.map((m) => m.start()));
    let coverageS: number | null = null;
    while (performance.now() - t0 < o.timeoutS * 1000) {
      if (evenlyCovered(members, streams)) {
        coverageS = (performance.now() - t0) / 1000;
        break;
      }
      await sleep(100);
    }
    if (coverageS === null) notes.push(`no even coverage within ${o.timeoutS} s`);
    o.log(`${agents} agents × ${streams} streams: coverage ${coverageS === null ? "not reached" : `${coverageS.toFixed(1)} s`}`);
    await sleep(2 * o.intervalS * 1000);

    global.gc?.();
    const rss = process.memoryUsage().rss;
    const windowMs = STEADY_INTERVALS * o.intervalS * 1000;
    const [r0, p0] = await Promise.all([commandStats(stats), pgStatements(probe, statements)]);
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    await sleep(windowMs);
    const [r1, p1] = await Promise.all([commandStats(stats), pgStatements(probe, statements)]);
    const cpu = process.cpuUsage(c0);
    const w1 = performance.now();
    const intervals = (w1 - w0) / (o.intervalS * 1000);
    const rd = redisDelta(r0, r1);
    const leading = members.find((m) => m.leading);
    const elections = members.reduce((n, m) => n + m.leadership.elector.elections, 0);
    if (!leading) notes.push(`no leader at the end of the steady window (${elections} terms so far)`);
    const errors = new Set(members.map((m) => m.leadership.leader.status.lastError).filter((e): e is string => !!e));
    if (errors.size > 0) notes.push(`leader errors: ${[...errors].slice(0, 3).join(" | ")}`);
    const steadyTicks = ticks.filter((t) => t.at >= w0 && t.at <= w1).map((t) => t.ms);

    let tickJoinMs: number | null = null;
    let joinEndToEndMs: number | null = null;
    if (coverageS !== null) {
      const j = new FleetMember(base(agents), "fl-join", capacity);
      members.push(j);
      const share = Math.floor(streams / (agents + 1));
      const j0 = performance.now();
      await j.start();
      while (performance.now() - j0 < 60_000 && j.held.length < share) await sleep(10);
      const j1 = performance.now();
      if (j.held.length >= share) {
        joinEndToEndMs = j1 - j0;
        const during = ticks.filter((t) => t.at >= j0 && t.at <= j1).map((t) => t.ms);
        tickJoinMs = during.length > 0 ? Math.max(...during) : null;
      } else notes.push("the newcomer did not get its share within 60 s");
    }
    return {
      agents,
      streams,
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
      cpuPerAgentPct: (100 * (cpu.user + cpu.system)) / 1000 / (w1 - w0) / agents,
      note: notes.join("; "),
    };
  } finally {
    // A fleet that overwhelmed this process may take long to stop: give it 30 s.
    await Promise.race([Promise.allSettled(members.map((m) => m.stop())), sleep(30_000)]);
    for (const c of [...clients, sub, stats]) await closeRedis(c).catch(() => {});
    await Promise.allSettled([sql.end({ timeout: 2 }), hbSql.end({ timeout: 2 }), probe.end({ timeout: 2 })]);
    await stop();
    process.off("unhandledRejection", dropped);
  }
}

export async function runFleet(sizes: readonly FleetSize[], o: { intervalS: number; timeoutS: number; log: (line: string) => void }): Promise<FleetResult[]> {
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
