/**
 * Leader tick benchmark (`npm run bench -- --tick=100[,1000] [--tick-streams=10000,100000]`):
 * what one leader's tick costs at a given fleet and catalog size, with the leader alone in
 * this process's event loop, under the production command's V8 flags (bench/run.ts
 * starts this process with them: the young generation's cap decides how often a large
 * plan stops for a scavenge).
 *
 * For each size: a private PostgreSQL (catalog of `streams` rows) and a private Redis; one
 * real LeaderLoop (leader/leader.ts) with its real store, catalog cache, tracker (both
 * liveness channels), legacy view and stream-health store, alone in this process; and
 * `members` simulated members in another process (./leader-tick-fleet.ts) that write real
 * heartbeats to both channels every HEARTBEAT_INTERVAL (1 s) and follow the leader's
 * committed writes as perfectly prompt workers (each write that concerns them: they beat
 * again at once and the leader is nudged, as their acks would). Then:
 * - cover: time from the leader's start to every stream held once, evenly;
 * - steady: over STEADY_MS, each tick's wall time and this process's CPU time during it
 *   (median and max: the leader's own, the members being elsewhere), where
 *   the wall time goes (each source read, the plan, the write, the rest) and how many
 *   plans the leader reused (leader/memo.ts; "no plan memo" for a build without it);
 * - join: one member more. "leader's side": from the start of the first tick that sees the
 *   newcomer alive to the commit that gives it its share; "end to end": from its start
 *   (it registers, then beats) to that commit; the longest tick in between; where the
 *   leader's side went: its ticks' reads, plans, writes and the rest of them, and the time
 *   between them (the members acting on the revokes and beating, the nudge's coalescing);
 *   and the plans computed.
 * TICK_DEBUG=1 prints every tick; TICK_PROFILE=dir writes CPU profiles of the steady
 * window and of the join.
 * Measures, never asserts. Not for production.
 */
import { fork } from "node:child_process";
import crypto from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CatalogCache } from "../shared/catalog-cache.js";
import { systemClock } from "../shared/clock.js";
import { loadConfig } from "../shared/config.js";
import { connect, type Sql } from "../shared/db.js";
import { Keys } from "../shared/keys.js";
import { LegacyView } from "../shared/legacy.js";
import { silentLogger } from "../shared/logger.js";
import { isLive } from "../shared/member-state.js";
import type { Snapshot } from "../shared/membership.js";
import { createTracker } from "../agent/liveness.js";
import { Metrics } from "../shared/metrics.js";
import { PgHeartbeats } from "../shared/pg-heartbeats.js";
import type { Plan, PlanInput } from "../shared/placement/plan.js";
import { RedisProtocol } from "../shared/redis-protocol.js";
import { closeRedis, createRedis } from "../shared/redis.js";
import { migrate } from "../shared/schema.js";
import { StreamHealthStore } from "../shared/stream-health-store.js";
import { LeaderLoop } from "../leader/leader.js";
import { LeaderStore } from "../leader/store.js";
import { privateServers } from "../test/helpers/private-servers.js";
import { FleetState, fleetOps, type FleetMessage, type FleetReply } from "./leader-tick-fleet.js";

export interface TickSize {
  readonly members: number;
  readonly streams: number;
}

export interface TickResult extends TickSize {
  readonly coverS: number | null;
  readonly ticks: number;
  readonly steadyWallMs: number | null;
  readonly steadyWallMaxMs: number | null;
  readonly steadyCpuMs: number | null;
  /** Median wall time per tick of each part (ms). */
  readonly phases: Readonly<Record<string, number>>;
  readonly joinLeaderMs: number | null;
  readonly joinEndToEndMs: number | null;
  readonly joinLongestTickMs: number | null;
  /** Where the join's leader's side went (ms): its ticks' reads, plans, writes, the rest of them, and between them. */
  readonly joinParts: Readonly<Record<string, number>>;
  /** How many steady ticks reused the last plan (leader/memo.ts). */
  readonly reused: string;
  readonly note: string;
}

/**
 * The wall time of a tick's reads: "members-pg" is part of "members", and "rows" and
 * "health" are read at once (leader/inputs.ts), so they count as the longer of the two.
 */
function readsWall(parts: ReadonlyMap<string, number>): number {
  const p = (l: string) => parts.get(l) ?? 0;
  return p("members") + p("catalog") + p("legacy") + Math.max(p("rows"), p("health"));
}

const STEADY_MS = 10_000;

/** What the benchmark uses of leader/memo.ts's PlanMemo. */
interface Memo {
  plan(input: PlanInput, rowsVersion: number): Plan;
  hits: number;
  misses: number;
}
const INTERVAL_MS = 1000;
const PREFIX = "tick";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: readonly number[]) => (xs.length === 0 ? null : [...xs].sort((a, b) => a - b)[xs.length >> 1]!);

/**
 * With TICK_PROFILE=dir: a CPU profile of the steady window, written there (for
 * `node tools`-free reading in Chrome's or VS Code's profiler).
 */
async function startProfile(): Promise<((name: string) => Promise<void>) | undefined> {
  const dir = process.env.TICK_PROFILE;
  if (!dir) return undefined;
  const { Session } = await import("node:inspector/promises");
  const { mkdirSync, writeFileSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return async (name) => {
    const { profile } = await session.post("Profiler.stop");
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/${name}.cpuprofile`, JSON.stringify(profile));
    session.disconnect();
  };
}

/** Wraps `obj[name]` (an async method) to add its wall time to `into[label]`. */
function timed<T extends object>(obj: T, name: keyof T & string, label: string, into: Map<string, number>): void {
  const f = (obj[name] as (...a: unknown[]) => Promise<unknown>).bind(obj);
  (obj as Record<string, unknown>)[name] = async (...a: unknown[]) => {
    const t0 = performance.now();
    try {
      return await f(...a);
    } finally {
      into.set(label, (into.get(label) ?? 0) + performance.now() - t0);
    }
  };
}

export async function runTickSize(size: TickSize, log: (line: string) => void): Promise<TickResult> {
  const { members: n, streams } = size;
  const { pg, redis: redisServer, stop } = await privateServers(streams);
  const env = {
    DATABASE_URL: pg.url,
    REDIS_URL: redisServer.url,
    REDIS_KEY_PREFIX: PREFIX,
    INSTANCE_ID: "leader",
    REQUIRE_WORKER: "false",
    LOG_LEVEL: "silent",
    HEARTBEAT_INTERVAL: String(INTERVAL_MS / 1000),
    // The cold start writes every row in one tick, which may outlast the default stall
    // limit on a loaded machine; the leader is alone here, stepping aside helps nothing.
    LEADER_LEASE_TTL: "120",
    FALLBACK_GRACE: "120",
  };
  const config = loadConfig(env);
  const sql: Sql = connect(pg.url, { max: 8 });
  const redis = createRedis(redisServer.url, { commandTimeoutMs: 2000 });
  const keys = new Keys(PREFIX);
  const notes: string[] = [];
  const closing = new AbortController();
  // The members, in a process of their own (./leader-tick-fleet.ts).
  const child = fork(fileURLToPath(new URL(`./leader-tick-fleet${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url)), [], { env: { ...process.env, TICK_FLEET_CHILD: "1" } });
  const replies: ((r: FleetReply) => void)[] = [];
  const waitFor = (t: FleetReply["t"]) => new Promise<void>((resolve) => replies.push((r) => r.t === t && resolve()));
  child.on("message", (r: FleetReply) => {
    for (const f of replies.splice(0)) f(r);
    if (r.t === "beaten") leaderRef?.nudge();
  });
  const send = (m: FleetMessage) => child.send(m);
  let leaderRef: LeaderLoop | undefined;
  try {
    await migrate(sql, config.schema);
    const clock = systemClock;
    const logger = silentLogger();
    const metrics = new Metrics({ instance: "leader" });
    const protocol = new RedisProtocol(redis, keys);
    const reader = new PgHeartbeats(sql, config.schema);
    const t = config.timings;
    const tracker = createTracker(config, clock, protocol, reader, () => true);
    const store = new LeaderStore(sql, config.schema);
    const catalog = new CatalogCache(sql, { table: config.streamsTable, idColumn: config.streamsIdColumn }, clock, logger);
    const legacy = LegacyView.fromConfig(config, sql, clock);
    const health = new StreamHealthStore(sql, config.schema);
    const token = crypto.randomUUID();
    await redis.set(keys.leader, token, "PX", 3_600_000);
    const leader = new LeaderLoop({
      id: "leader",
      config,
      clock,
      logger,
      protocol,
      tracker,
      store,
      catalog,
      legacy,
      metrics,
      isLeader: () => true,
      leaseToken: () => token,
      onFenced: () => notes.push("fenced"),
      onStalled: (why) => notes.push(`stalled: ${why}`),
      forgetHeartbeats: (ids) => reader.forget(ids),
      requireWorker: false,
      health,
    });
    leaderRef = leader;

    // The parts of a tick, timed.
    const parts = new Map<string, number>();
    timed(tracker, "refresh", "members", parts);
    timed(store, "load", "rows", parts);
    timed(catalog, "get", "catalog", parts);
    timed(legacy, "read", "legacy", parts);
    timed(health, "readForPlan", "health", parts);
    timed(store, "apply", "write", parts);
    timed(reader, "readAll", "members-pg", parts);
    // The plan memo (leader/memo.ts), when this build has one: each plan timed, reused or not.
    const memo = (leader as unknown as { memo?: Memo }).memo;
    const plans: { at: number; ms: number; hit: boolean }[] = [];
    if (memo) {
      const rawPlan = memo.plan.bind(memo);
      memo.plan = (input, version) => {
        const hits = memo.hits;
        const t0 = performance.now();
        const out = rawPlan(input, version);
        const ms = performance.now() - t0;
        parts.set("plan", (parts.get("plan") ?? 0) + ms);
        plans.push({ at: t0, ms, hit: memo.hits > hits });
        return out;
      };
    }
    type Tick = { at: number; wall: number; cpu: number; parts: Map<string, number>; saw: Snapshot | undefined };
    const ticks: Tick[] = [];
    let seen: Snapshot | undefined;
    const rawRefresh = tracker.refresh.bind(tracker);
    tracker.refresh = async () => {
      const s = await rawRefresh();
      seen = s;
      return s;
    };
    const loop = leader as unknown as { tick: (epoch: number, signal: AbortSignal) => Promise<void> };
    const rawTick = loop.tick.bind(leader);
    loop.tick = async (epoch, signal) => {
      parts.clear();
      seen = undefined;
      const at = performance.now();
      const c0 = process.cpuUsage();
      try {
        await rawTick(epoch, signal);
      } finally {
        const c = process.cpuUsage(c0);
        ticks.push({ at, wall: performance.now() - at, cpu: (c.user + c.system) / 1000, parts: new Map(parts), saw: seen });
        if (process.env.TICK_DEBUG) log(`tick ${ticks.at(-1)!.wall.toFixed(1)} ms, CPU ${ticks.at(-1)!.cpu.toFixed(1)} ms: ${[...parts].map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}`);
      }
    };

    // The simulated fleet follows the leader's committed writes; this process keeps the
    // same bookkeeping to see the cover and the newcomer's share.
    const capacity = Math.ceil((1.5 * streams) / n);
    const ids = Array.from({ length: n }, (_, i) => `m-${String(i).padStart(4, "0")}`);
    const sim = new FleetState();
    for (const id of ids) sim.add(id);
    const ready = waitFor("ready");
    send({ t: "start", pgUrl: pg.url, redisUrl: redisServer.url, prefix: PREFIX, schema: config.schema, ids, capacity, intervalMs: INTERVAL_MS });
    await ready;
    const commits: { at: number; newcomer: number }[] = [];
    let newcomer: string | undefined;
    const rawApply = store.apply.bind(store);
    store.apply = async (epoch, ops, bump, statuses, events, sessions) => {
      const versions = await rawApply(epoch, ops, bump, statuses, events, sessions);
      const fops = fleetOps(ops);
      sim.apply(fops, [...versions]);
      commits.push({ at: performance.now(), newcomer: newcomer ? sim.held.get(newcomer)!.size : 0 });
      send({ t: "applied", ops: fops, versions: [...versions] });
      return versions;
    };
    await sleep(INTERVAL_MS);

    const covered = () => {
      let total = 0;
      let min = Infinity;
      let max = 0;
      const seenIds = new Set<string>();
      for (const held of sim.held.values()) {
        total += held.size;
        min = Math.min(min, held.size);
        max = Math.max(max, held.size);
        for (const s of held) seenIds.add(s);
      }
      return total === streams && seenIds.size === streams && max - min <= 1;
    };
    const t0 = performance.now();
    const run = leader.run(closing.signal);
    let coverS: number | null = null;
    while (performance.now() - t0 < 120_000) {
      if (covered()) {
        coverS = (performance.now() - t0) / 1000;
        break;
      }
      await sleep(100);
    }
    if (coverS === null) notes.push("no even cover within 120 s");
    // As agents would have by now: every served stream's last outcome is a success.
    for (const [id, held] of sim.held) await health.recordOutcomes(id, [...held], []);
    // And the table that just grew has statistics, as autovacuum gives it within a minute
    // (the leader's stream-health read picks its index only then: docs/operations.md).
    await sql.unsafe(`analyze ${config.schema}.stream_health`);
    log(`${n} members × ${streams} streams: cover ${coverS === null ? "not reached" : `${coverS.toFixed(1)} s`}`);
    await sleep(3 * INTERVAL_MS);

    const w0 = performance.now();
    const memo0 = { hits: memo?.hits ?? 0, misses: memo?.misses ?? 0 };
    const profiler = await startProfile();
    await sleep(STEADY_MS);
    await profiler?.(`${n}x${streams}-steady`);
    const steady = ticks.filter((x) => x.at >= w0);
    const phases: Record<string, number> = {};
    for (const label of ["members", "members-pg", "plan", "rows", "catalog", "legacy", "health", "write"]) phases[label] = median(steady.map((x) => x.parts.get(label) ?? 0)) ?? 0;
    const reused = memo ? `${memo.hits - memo0.hits} of ${memo.hits - memo0.hits + memo.misses - memo0.misses} plans reused` : "no plan memo";
    phases.rest = median(steady.map((x) => x.wall - readsWall(x.parts) - (x.parts.get("plan") ?? 0) - (x.parts.get("write") ?? 0))) ?? 0;

    let joinLeaderMs: number | null = null;
    let joinEndToEndMs: number | null = null;
    let joinLongestTickMs: number | null = null;
    const joinParts: Record<string, number> = {};
    if (coverS !== null) {
      const share = Math.floor(streams / (n + 1));
      newcomer = "m-join";
      sim.add(newcomer);
      const joinProfiler = await startProfile();
      // From here: the newcomer registers and beats (its process answers, and the leader is nudged).
      const j0 = performance.now();
      send({ t: "add", id: newcomer });
      while (performance.now() - j0 < 60_000 && sim.held.get(newcomer)!.size < share) await sleep(5);
      await joinProfiler?.(`${n}x${streams}-join`);
      const done = commits.find((c) => c.at >= j0 && c.newcomer >= share);
      // The tick that committed it may still be running: let it finish, to count it.
      const counted = () => done !== undefined && ticks.some((x) => x.at <= done.at && x.at + x.wall >= done.at);
      for (let w = 0; w < 1000 && done && !counted(); w++) await sleep(5);
      const first = ticks.find((x) => x.at >= j0 && isLive(x.saw?.members.get(newcomer!)));
      if (done && first) {
        joinLeaderMs = done.at - first.at;
        joinEndToEndMs = done.at - j0;
        const computed = plans.filter((x) => x.at >= first.at && x.at <= done.at && !x.hit).map((x) => x.ms.toFixed(0));
        if (memo) notes.push(`join: ${computed.length} plans computed (${computed.join(", ")} ms)`);
        const during = ticks.filter((x) => x.at >= first.at && x.at <= done.at);
        joinLongestTickMs = Math.max(...during.map((x) => x.wall));
        // The last tick counts up to the commit only.
        const walls = during.map((x, i) => (i === during.length - 1 ? done.at - x.at : x.wall));
        const sum = (labels: readonly string[]) => during.reduce((a, x) => a + labels.reduce((b, l) => b + (x.parts.get(l) ?? 0), 0), 0);
        joinParts.ticks = during.length;
        joinParts.reads = during.reduce((a, x) => a + readsWall(x.parts), 0);
        joinParts.plan = sum(["plan"]);
        joinParts.write = sum(["write"]);
        joinParts.rest = walls.reduce((a, w) => a + w, 0) - joinParts.reads - joinParts.plan - joinParts.write;
        joinParts.between = joinLeaderMs - walls.reduce((a, w) => a + w, 0);
      } else notes.push("the newcomer did not get its share within 60 s");
    }
    closing.abort();
    await run;
    const errors = leader.status.lastError;
    if (errors) notes.push(`leader error: ${errors}`);
    return {
      members: n,
      streams,
      coverS,
      ticks: steady.length,
      steadyWallMs: median(steady.map((x) => x.wall)),
      steadyWallMaxMs: steady.length > 0 ? Math.max(...steady.map((x) => x.wall)) : null,
      steadyCpuMs: median(steady.map((x) => x.cpu)),
      phases,
      joinLeaderMs,
      joinEndToEndMs,
      joinLongestTickMs,
      joinParts,
      reused,
      note: notes.join("; "),
    };
  } finally {
    closing.abort();
    if (child.connected) {
      const stopped = waitFor("stopped");
      send({ t: "stop" });
      await Promise.race([stopped, sleep(10_000)]);
    }
    if (child.exitCode === null) child.kill();
    await closeRedis(redis).catch(() => {});
    await sql.end({ timeout: 2 });
    await stop();
  }
}

export async function runTick(sizes: readonly TickSize[], log: (line: string) => void): Promise<TickResult[]> {
  const out: TickResult[] = [];
  for (const s of sizes) {
    const r = await runTickSize(s, log);
    const f = (x: number | null) => (x === null ? "—" : x.toFixed(1));
    const parts = Object.entries(r.phases)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(", ");
    log(
      `${r.members} members × ${r.streams} streams: steady tick ${f(r.steadyWallMs)} ms (max ${f(r.steadyWallMaxMs)}, CPU ${f(r.steadyCpuMs)} ms, ${r.ticks} ticks, ${r.reused}; ${parts}), ` +
        `join: leader's side ${f(r.joinLeaderMs)} ms (${Object.entries(r.joinParts)
          .map(([k, v]) => `${k} ${k === "ticks" ? v : v.toFixed(1)}`)
          .join(", ")}), end to end ${f(r.joinEndToEndMs)} ms, longest tick ${f(r.joinLongestTickMs)} ms ${r.note}`,
    );
    out.push(r);
  }
  return out;
}
