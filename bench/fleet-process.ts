/**
 * One process's share of the fleet benchmark (bench/fleet.ts): a child process that runs
 * some of the fleet's members (bench/fleet-member.ts) on connections of its own (a
 * PostgreSQL pool for the work, one for the heartbeats, one for the fenced writes of
 * whichever member here leads (a real leader's are its own), one Redis client per 25 members,
 * one subscriber whose nudges every member here handles), and answers the benchmark's
 * questions over the IPC channel: how many streams each member holds, which ones, this
 * process's CPU time and memory, who leads here. It sends each leader tick's wall time as
 * it is observed, dated on the epoch clock (performance.timeOrigin + now), so that the
 * benchmark can place it in its windows, and every unhandled rejection (a store that
 * dropped its connections) as a note instead of ending.
 *
 * Spreading the members over a few processes puts them on more than one event loop, as
 * agents are; members still share their process's connections, so it is not a fleet of
 * agent processes (bench/agents.ts is). Measures, never asserts. Not for production.
 */
import fs from "node:fs";
import { Session } from "node:inspector/promises";
import path from "node:path";
import { systemClock } from "../shared/clock.js";
import { connect, type Sql } from "../shared/db.js";
import { createLogger, silentLogger } from "../shared/logger.js";
import pino from "pino";
import { Metrics } from "../shared/metrics.js";
import { closeRedis, createRedis } from "../shared/redis.js";
import type { Redis } from "ioredis";
import { FleetMember, type FleetShared } from "./fleet-member.js";

export interface FleetStart {
  readonly env: Readonly<Record<string, string>>;
  readonly ids: readonly string[];
  readonly capacity: number;
  readonly pgUrl: string;
  readonly redisUrl: string;
  readonly prefix: string;
  /** Connections of this process's work pool and heartbeat pool. */
  readonly sqlMax: number;
  readonly hbMax: number;
}

/** What the benchmark asks a member process; each request carries a number its reply repeats. */
export type FleetRequest = ({ t: "start" } & FleetStart) | { t: "counts" } | { t: "held" } | { t: "sample" } | { t: "join"; id: string } | { t: "stop" };
export type ToChild = FleetRequest & { req: number };

/** What this process reports at a sample. */
export interface ProcessSample {
  /** Resident memory now, after a full collection when the process may force one. */
  readonly rss: number;
  /** process.cpuUsage() since the process started, in microseconds. */
  readonly cpuUs: number;
  readonly leading: number;
  readonly elections: number;
  readonly errors: readonly string[];
}

export type FromChild =
  | { t: "reply"; req: number; body: unknown; error?: string }
  | { t: "tick"; at: number; ms: number }
  | { t: "note"; msg: string };

/** The epoch clock, in milliseconds, comparable across the benchmark's processes. */
export const epochNow = (): number => performance.timeOrigin + performance.now();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Share {
  readonly members: FleetMember[] = [];
  private readonly sql: Sql;
  private readonly hbSql: Sql;
  private readonly leaderSql: Sql;
  private readonly clients: Redis[];
  private readonly sub: Redis;
  private readonly base: (k: number) => FleetShared;

  constructor(
    private readonly o: FleetStart,
    send: (m: FromChild) => void,
  ) {
    this.sql = connect(o.pgUrl, { max: o.sqlMax });
    this.hbSql = connect(o.pgUrl, { max: o.hbMax });
    // One member of the fleet leads at a time: its epoch and fenced writes do not queue behind the others' work.
    this.leaderSql = connect(o.pgUrl, { max: 2 });
    // A real agent has its own Redis connection: one client per 25 members keeps the queues short.
    this.clients = Array.from({ length: Math.ceil(o.ids.length / 25) + 1 }, () => createRedis(o.redisUrl, { commandTimeoutMs: 1000 }));
    this.sub = createRedis(o.redisUrl, { commandTimeoutMs: 1000, subscriber: true });
    const metrics = new Metrics({ instance: "fleet" });
    const observe = metrics.leaderTickSeconds.observe.bind(metrics.leaderTickSeconds);
    metrics.leaderTickSeconds.observe = ((v: number) => {
      send({ t: "tick", at: epochNow(), ms: v * 1000 });
      observe(v);
    }) as typeof metrics.leaderTickSeconds.observe;
    // FLEET_LOG=dir: the members' log lines (info and above), one file per process, to read a run's course.
    const logger = process.env.FLEET_LOG ? createLogger({ level: "info", destination: pino.destination({ dest: path.join(process.env.FLEET_LOG, `fleet-${process.pid}.log`), sync: false }) }) : silentLogger();
    this.base = (k) => ({ env: o.env, clock: systemClock, logger, metrics, sql: this.sql, hbSql: this.hbSql, leaderSql: this.leaderSql, redis: this.clients[k % this.clients.length]! });
  }

  /** Starts the members; returns this process's resident memory before they existed. */
  async start(): Promise<number> {
    this.sub.on("message", (_c: string, message: string) => {
      for (const m of this.members) m.nudge(message);
    });
    await this.sub.subscribe(`${this.o.prefix}:events`);
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    this.o.ids.forEach((id, i) => this.members.push(new FleetMember(this.base(i), id, this.o.capacity)));
    await Promise.all(this.members.map((m) => m.start()));
    return rss0;
  }

  async join(id: string): Promise<void> {
    const m = new FleetMember(this.base(this.members.length), id, this.o.capacity);
    this.members.push(m);
    await m.start();
  }

  sample(): ProcessSample {
    global.gc?.();
    const cpu = process.cpuUsage();
    const errors = new Set(this.members.map((m) => m.leadership.leader.status.lastError).filter((e): e is string => !!e));
    return {
      rss: process.memoryUsage().rss,
      cpuUs: cpu.user + cpu.system,
      leading: this.members.filter((m) => m.leading).length,
      elections: this.members.reduce((n, m) => n + m.leadership.elector.elections, 0),
      errors: [...errors],
    };
  }

  async stop(): Promise<void> {
    // A fleet that overwhelmed this process may take long to stop: give it 30 s.
    await Promise.race([Promise.allSettled(this.members.map((m) => m.stop())), sleep(30_000)]);
    for (const c of [...this.clients, this.sub]) await closeRedis(c).catch(() => {});
    await Promise.allSettled([this.sql.end({ timeout: 2 }), this.hbSql.end({ timeout: 2 }), this.leaderSql.end({ timeout: 2 })]);
  }
}

/** FLEET_PROFILE=dir: this process's CPU profile from its start to the stop, written there. */
async function profiler(): Promise<() => Promise<void>> {
  const dir = process.env.FLEET_PROFILE;
  if (!dir) return async () => {};
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return async () => {
    const { profile } = await session.post("Profiler.stop");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `fleet-${process.pid}.cpuprofile`), JSON.stringify(profile));
  };
}

if (process.env.FLEET_CHILD === "1" && process.send) {
  const send = (m: FromChild) => void process.send!(m);
  const profiled = profiler();
  let share: Share | undefined;
  // A store overwhelmed by the fleet may drop connections: say so instead of ending the run.
  process.on("unhandledRejection", (err) => send({ t: "note", msg: err instanceof Error ? err.message : String(err) }));
  process.on("message", (m: ToChild) => {
    void (async () => {
      let body: unknown = null;
      if (m.t === "start") {
        share = new Share(m, send);
        body = await share.start();
      } else if (m.t === "counts") body = share?.members.map((x) => x.held.length) ?? [];
      else if (m.t === "held") body = share?.members.flatMap((x) => x.held) ?? [];
      else if (m.t === "sample") body = share?.sample();
      else if (m.t === "join") await share?.join(m.id);
      else {
        await (await profiled)();
        await share?.stop();
        send({ t: "reply", req: m.req, body: null });
        // Timers and sockets of a fleet that overwhelmed this process may linger: end here.
        process.exit(0);
      }
      send({ t: "reply", req: m.req, body });
    })().catch((err: unknown) => send({ t: "reply", req: m.req, body: null, error: `${m.t}: ${err instanceof Error ? err.message : String(err)}` }));
  });
}
