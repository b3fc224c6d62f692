/**
 * Agent-process benchmark (`npm run bench -- --agents[=16] [--agents-streams=5000]`): what
 * a fleet of REAL agent processes costs and how fast it starts. Measures and prints, never
 * asserts.
 *
 * Each agent runs the production command exactly as the Dockerfile's CMD gives it (`node`,
 * its V8 flags, dist/agent/main.js; `npm run build` runs first when dist/ is missing or
 * older than a source), with the default timings (or those given), equal MAX_STREAMS (1.5 × streams in
 * all), LOG_LEVEL info to a log file, a private PostgreSQL (with a `streams` catalog) and
 * a private Redis (test/helpers/private-servers.ts). Beside each, a simulated worker
 * (tools/sim-worker.ts, as the demo and the cluster tests run it: it obeys the lease),
 * living in this process and started with its agent, so it keeps asking until the agent
 * listens (a worker and its sidecar starting together).
 *
 * - Cold start: every agent spawned at once against an empty schema; the time from the
 *   spawn to an even cover (every catalog stream served by exactly one worker, every
 *   worker within one stream of the others), sampled every 50 ms, with milestones (every
 *   worker answered once, a ready leader named in Redis, the first stream served, every
 *   stream served) and the CPU seconds the agents used until the cover: on shared cores
 *   the wall time follows the machine's load, the CPU seconds much less.
 * - Footprint: after `settleS` more seconds, VmRSS, RssAnon (the private part; the rest is
 *   mapped files, mostly node's own code, shared by every node process on the host) and
 *   VmHWM (the peak) of each agent from /proc/<pid>/status, leader and followers apart.
 * - Idle CPU: utime + stime from /proc/<pid>/stat over `idleS` seconds of the settled
 *   fleet (its workers still long-poll and report), as a share of one core.
 * The machine's load average is printed with each result. With BENCH_KEEP_LOGS=1 the
 * agents' logs are kept, with a timeline of what every worker serves and each agent's CPU
 * seconds at the cover beside them (timeline.txt).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { freePort } from "../tools/ports.js";
import { SimWorker } from "../tools/sim-worker.js";
import { privateServers } from "../test/helpers/private-servers.js";
import { ensureBuilt, productionCommand } from "../test/helpers/production-command.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PREFIX = "agents";

export interface AgentsResult {
  readonly agents: number;
  readonly streams: number;
  /** Settings given besides the defaults (--agents-env). */
  readonly env?: Readonly<Record<string, string>>;
  /** When the agents were spawned (to match their logs). */
  readonly spawnedAt: string;
  /** 1-minute load average when the agents were spawned and when the run ended. */
  readonly loadAtStart: number;
  readonly loadAtEnd: number;
  /** Seconds from the spawn; null when not reached within the timeout. */
  readonly allAnsweredS: number | null;
  readonly leaderReadyS: number | null;
  readonly firstServedS: number | null;
  readonly allServedS: number | null;
  readonly coverS: number | null;
  /** CPU seconds all agents used from the spawn to the cover (or the timeout): the start's cost, whatever the machine's load. */
  readonly startCpuS: number;
  readonly leader: Figures | null;
  readonly followers: { readonly median: Figures; readonly max: Figures } | null;
  readonly note: string;
}

/**
 * One process: resident memory (VmRSS), its anonymous part (RssAnon: the heap and other
 * private memory; the rest is mapped files, mostly node's own code, shared by every node
 * process on the host) and its peak (VmHWM), in MB; CPU over the idle window, % of one core.
 */
export interface Figures {
  readonly rssMB: number;
  readonly anonMB: number;
  readonly hwmMB: number;
  readonly cpuPct: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CLK_TCK = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start after the last ")".
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** VmRSS, RssAnon and VmHWM of a process, in MB. */
function memory(pid: number): { rssMB: number; anonMB: number; hwmMB: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMB: kb("VmRSS") / 1024, anonMB: kb("RssAnon") / 1024, hwmMB: kb("VmHWM") / 1024 };
}

interface Member {
  readonly id: string;
  readonly proc: ChildProcess;
  readonly worker: SimWorker;
  readonly exited: Promise<void>;
}

const running = (m: Member) => m.proc.exitCode === null && m.proc.signalCode === null && m.proc.pid !== undefined;

/** Every stream served by exactly one worker, every worker within one stream of the others. */
function evenCover(members: readonly Member[], streams: number): { served: number; even: boolean } {
  const seen = new Set<string>();
  let total = 0;
  let min = Infinity;
  let max = 0;
  for (const m of members) {
    const s = m.worker.serving;
    total += s.size;
    min = Math.min(min, s.size);
    max = Math.max(max, s.size);
    for (const id of s) seen.add(id);
  }
  return { served: seen.size, even: seen.size === streams && total === streams && max - min <= 1 };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export async function runAgents(o: {
  agents: number;
  streams: number;
  timeoutS: number;
  /** Seconds the fleet runs after its cover before memory is read and the CPU window opens. */
  settleS: number;
  /** The idle CPU window, seconds. */
  idleS: number;
  /** Node.js options added to the production command's (e.g. a V8 flag to compare); none by default. */
  nodeArgs?: readonly string[];
  /** Settings given to every agent besides the benchmark's own (e.g. HEARTBEAT_INTERVAL); none by default. */
  env?: Readonly<Record<string, string>>;
  log: (line: string) => void;
}): Promise<AgentsResult> {
  const command = productionCommand();
  ensureBuilt(command.main, o.log);
  const { agents, streams } = o;
  const { pg, redis: redisServer, stop } = await privateServers(streams);
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), "fingerv7-agents-"));
  const redis = new Redis(redisServer.url);
  const capacity = Math.ceil((1.5 * streams) / agents);
  const ports = await Promise.all(Array.from({ length: agents }, () => freePort()));
  const members: Member[] = [];
  const notes: string[] = [];
  try {
    const loadAtStart = os.loadavg()[0]!;
    const spawnedAt = new Date().toISOString();
    const t0 = performance.now();
    for (let i = 0; i < agents; i++) {
      const id = `ag-${String(i + 1).padStart(2, "0")}`;
      const fd = fs.openSync(path.join(logDir, `${id}.log`), "a");
      const proc = spawn(process.execPath, [...command.flags, ...(o.nodeArgs ?? []), command.main], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "/tmp",
          NODE_ENV: "production",
          DATABASE_URL: pg.url,
          REDIS_URL: redisServer.url,
          REDIS_KEY_PREFIX: PREFIX,
          INSTANCE_ID: id,
          MAX_STREAMS: String(capacity),
          PORT: String(ports[i]),
          HOST: "127.0.0.1",
          LOG_LEVEL: "info",
          ...o.env,
        },
        stdio: ["ignore", fd, fd],
      });
      fs.closeSync(fd);
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      // The worker beside it starts with it, as sim-worker-main.ts runs (10 s long-poll, a report every 5 s).
      const worker = new SimWorker({ url: `http://127.0.0.1:${ports[i]}`, waitS: 10, reportEveryMs: 5000 });
      worker.start();
      members.push({ id, proc, worker, exited });
    }
    const at = () => (performance.now() - t0) / 1000;
    let allAnsweredS: number | null = null;
    let leaderReadyS: number | null = null;
    let firstServedS: number | null = null;
    let allServedS: number | null = null;
    let coverS: number | null = null;
    let leaderId: string | null = null;
    // BENCH_KEEP_LOGS=1: a timeline of what the workers serve, beside the agents' logs.
    const trace: string[] | undefined = process.env.BENCH_KEEP_LOGS ? [`spawned at ${spawnedAt}`] : undefined;
    let lastCounts = "";
    while (at() < o.timeoutS) {
      if (allAnsweredS === null && members.every((m) => m.worker.fetches > 0)) allAnsweredS = at();
      if (leaderReadyS === null) {
        const info = await redis.get(`${PREFIX}:leader:info`).catch(() => null);
        const parsed = info ? (JSON.parse(info) as { id: string; ready: boolean }) : undefined;
        if (parsed?.ready) {
          leaderReadyS = at();
          leaderId = parsed.id;
        }
      }
      const c = evenCover(members, streams);
      if (trace) {
        const counts = members.map((m) => m.worker.serving.size).join("/");
        if (counts !== lastCounts) trace.push(`${at().toFixed(2)} served ${c.served} per worker ${(lastCounts = counts)}`);
      }
      if (firstServedS === null && c.served > 0) firstServedS = at();
      if (allServedS === null && c.served === streams) allServedS = at();
      if (c.even) {
        coverS = at();
        break;
      }
      const dead = members.find((m) => !running(m));
      if (dead) {
        notes.push(`${dead.id} exited with ${dead.proc.exitCode ?? dead.proc.signalCode} (see ${logDir})`);
        break;
      }
      await sleep(50);
    }
    const startCpuS = members.reduce((sum, m) => sum + (running(m) ? cpuSeconds(m.proc.pid!) : 0), 0);
    if (trace) {
      trace.push(`CPU s per agent at the cover: ${members.map((m) => `${m.id} ${running(m) ? cpuSeconds(m.proc.pid!).toFixed(2) : "-"}`).join(", ")}`);
      fs.writeFileSync(path.join(logDir, "timeline.txt"), trace.join("\n") + "\n");
    }
    if (coverS === null) notes.push(`no even cover within ${o.timeoutS} s`);
    const f = (x: number | null) => (x === null ? "—" : `${x.toFixed(1)} s`);
    o.log(
      `${agents} agents × ${streams} streams: every worker answered ${f(allAnsweredS)}, leader ready ${f(leaderReadyS)}, first served ${f(firstServedS)}, ` +
        `all served ${f(allServedS)}, even cover ${f(coverS)}; the agents used ${startCpuS.toFixed(1)} CPU seconds until then (load average ${loadAtStart.toFixed(2)} at the spawn)`,
    );

    let leader: Figures | null = null;
    let followers: AgentsResult["followers"] = null;
    if (coverS !== null) {
      await sleep(o.settleS * 1000);
      const info = await redis.get(`${PREFIX}:leader:info`);
      leaderId = info ? (JSON.parse(info) as { id: string }).id : leaderId;
      const alive = members.filter(running);
      const c0 = new Map(alive.map((m) => [m.id, cpuSeconds(m.proc.pid!)]));
      const w0 = performance.now();
      await sleep(o.idleS * 1000);
      const wall = (performance.now() - w0) / 1000;
      const figures = new Map(alive.map((m) => [m.id, { ...memory(m.proc.pid!), cpuPct: (100 * (cpuSeconds(m.proc.pid!) - c0.get(m.id)!)) / wall }]));
      { const e = evenCover(members, streams); if (!e.even) notes.push(`the cover was no longer even at the end of the idle window (served per worker ${members.map((m) => m.worker.serving.size).join("/")})`); }
      leader = leaderId ? (figures.get(leaderId) ?? null) : null;
      if (!leader) notes.push("no leader named at the end");
      const rest = [...figures].filter(([id]) => id !== leaderId).map(([, v]) => v);
      if (rest.length > 0) {
        const pick = (g: (x: Figures) => number) => rest.map(g);
        followers = {
          median: { rssMB: median(pick((x) => x.rssMB)), anonMB: median(pick((x) => x.anonMB)), hwmMB: median(pick((x) => x.hwmMB)), cpuPct: median(pick((x) => x.cpuPct)) },
          max: { rssMB: Math.max(...pick((x) => x.rssMB)), anonMB: Math.max(...pick((x) => x.anonMB)), hwmMB: Math.max(...pick((x) => x.hwmMB)), cpuPct: Math.max(...pick((x) => x.cpuPct)) },
        };
      }
      const m = (x: Figures | undefined | null) => (x ? `RSS ${x.rssMB.toFixed(1)} MB (anonymous ${x.anonMB.toFixed(1)}, peak ${x.hwmMB.toFixed(1)}), CPU ${x.cpuPct.toFixed(2)} %` : "—");
      o.log(`leader ${leaderId ?? "?"}: ${m(leader)}; followers median ${m(followers?.median)}, max ${m(followers?.max)} (idle window ${o.idleS} s)`);
    }
    return { agents, streams, env: o.env, spawnedAt, loadAtStart, loadAtEnd: os.loadavg()[0]!, allAnsweredS, leaderReadyS, firstServedS, allServedS, coverS, startCpuS, leader, followers, note: notes.join("; ") };
  } finally {
    await Promise.all(members.map((m) => m.worker.stop()));
    // SIGTERM first, so a profile asked for with --agents-node-args="--cpu-prof --cpu-prof-dir=…" is written at exit; SIGKILL after 30 s.
    for (const m of members) if (running(m)) m.proc.kill("SIGTERM");
    await Promise.race([Promise.all(members.map((m) => m.exited)), sleep(30_000)]);
    for (const m of members) if (running(m)) m.proc.kill("SIGKILL");
    await Promise.all(members.map((m) => m.exited));
    redis.disconnect();
    await stop();
    // BENCH_KEEP_LOGS=1 keeps the agents' logs of a run that went well too (to read its milestones).
    if (notes.length === 0 && !process.env.BENCH_KEEP_LOGS) fs.rmSync(logDir, { recursive: true, force: true });
    else o.log(`agent logs kept in ${logDir}`);
  }
}

/** The result as tables (bench/run.ts prints them): the cold start, then the fleet at rest. */
export function agentsTables(r: AgentsResult, o: { settleS: number; idleS: number }): { title: string; head: string[]; rows: string[][]; note: string }[] {
  const s = (x: number | null) => (x === null ? "—" : `${x.toFixed(1)} s`);
  const mem = (x: Figures | null | undefined) => (x ? `${x.rssMB.toFixed(1)} (${x.anonMB.toFixed(1)})` : "—");
  const peak = (x: Figures | null | undefined) => (x ? x.hwmMB.toFixed(1) : "—");
  const cpu = (x: Figures | null | undefined) => (x ? `${x.cpuPct.toFixed(2)} %` : "—");
  return [
    {
      title: `Agent processes: ${r.agents} × the production command, ${r.streams.toLocaleString("en")} streams, ${r.env && Object.keys(r.env).length ? Object.entries(r.env).map(([k, v]) => `${k}=${v}`).join(" ") : "default timings"}, a simulated worker beside each, private PostgreSQL and Redis`,
      head: ["load avg", "workers answered", "leader ready", "first served", "all served", "even cover", "CPU s to cover", "note"],
      rows: [[`${r.loadAtStart.toFixed(2)} → ${r.loadAtEnd.toFixed(2)}`, s(r.allAnsweredS), s(r.leaderReadyS), s(r.firstServedS), s(r.allServedS), s(r.coverS), r.startCpuS.toFixed(1), r.note]],
      note: "times from the spawn; CPU s to cover: the CPU seconds all agents used from the spawn to the even cover.",
    },
    {
      title: `Agent processes at rest, ${o.settleS} s after the cover: memory, and CPU over ${o.idleS} s`,
      head: ["", "VmRSS MB (RssAnon)", "VmHWM MB", "CPU, % of a core"],
      rows: [
        ["leader", mem(r.leader), peak(r.leader), cpu(r.leader)],
        ["followers, median", mem(r.followers?.median), peak(r.followers?.median), cpu(r.followers?.median)],
        ["followers, largest", mem(r.followers?.max), peak(r.followers?.max), cpu(r.followers?.max)],
      ],
      note: "RssAnon: the private part of VmRSS; the rest is mapped files, mostly node's own code, which every node process on the host shares.",
    },
  ];
}
