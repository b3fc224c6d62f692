/**
 * `npm run bench [-- --quick] [-- --json [file]] [-- --md]`
 *
 * Compares the assignor with the baselines in bench/strategies.ts on the same inputs and
 * prints readable tables: movement ÷ minimum on join, leave, capacity change and +10 %
 * catalog growth; balance; unassigned and over-capacity streams; the fraction of streams
 * that move when the cluster falls back from the orchestrated assignment to pure hashing;
 * compute time (median of several runs). --quick runs a reduced set (well under a
 * minute); --json writes every number to a file (default bench/results/latest.json);
 * --md prints the tables as markdown (for the README); --only movement,hashed,timing,failover
 * runs just those parts. The full run also measures failover with real agent processes
 * (bench/failover.ts, about two minutes); --quick leaves it out. --fleet[=100,300,1000]
 * runs only the fleet benchmark (bench/fleet.ts) at those member counts, with
 * --fleet-streams=10000,100000, --fleet-interval=1 (HEARTBEAT_INTERVAL, seconds),
 * --fleet-timeout=120 (seconds allowed to reach full coverage) and --fleet-processes=P
 * (the member processes; by default one per 250 members). --agents[=16] runs only the
 * agent-process benchmark (bench/agents.ts: cold start, memory and idle CPU of real agent
 * processes) with --agents-streams=5000, --agents-timeout=120 (seconds allowed to cover),
 * --agents-settle=15 and --agents-idle=30 (seconds before memory is read, and of the idle
 * CPU window), --agents-node-args="…" (Node.js options added to the production
 * command's, to compare V8 flags) and --agents-env=KEY=VALUE[,KEY=VALUE] (settings given
 * to every agent, e.g. HEARTBEAT_INTERVAL=2; the defaults otherwise).
 * --tick=100[,1000] runs only the leader tick benchmark (bench/leader-tick.ts): one leader
 * alone in this process with that many simulated members, at --tick-streams=10000,100000.
 * --plan-join=100[,1000] runs only the join plan benchmark (bench/plan-join.ts): plan()
 * alone at a member's join, first, warm and after garbage collections, at
 * --plan-join-streams=100000. Both run under the production command's V8 flags (the
 * Dockerfile's CMD: they decide how large plans collect their garbage), this process
 * starting itself again with them; --node-args="…" adds Node.js options (to compare flags).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { Profile } from "./measure.js";
import { simdKernelAvailable } from "../shared/placement/hash.js";
import { assignor, LEADER_POLICY, STRATEGIES } from "./strategies.js";
import { hashedFallback, movement, timing } from "./placement.js";
import { table as tableFor } from "./tables.js";
import { runFailover } from "./failover.js";
import { runFleet, type FleetResult } from "./fleet.js";
import { agentsTables, runAgents, type AgentsResult } from "./agents.js";
import { productionCommand } from "../test/helpers/production-command.js";
import { runTick } from "./leader-tick.js";
import { runPlanJoin } from "./plan-join.js";

const DEFAULT_JSON = path.join("bench", "results", "latest.json");

// `--json` may stand alone or take a file: give it the default when no file follows; `--fleet` alone means every size.
const argv = process.argv
  .slice(2)
  .flatMap((a, i, all) => (a === "--json" && (all[i + 1] === undefined || all[i + 1]!.startsWith("--")) ? ["--json", DEFAULT_JSON] : a === "--fleet" ? ["--fleet=100,300,1000"] : a === "--agents" ? ["--agents=16"] : [a]));
const { values } = parseArgs({
  args: argv,
  options: {
    quick: { type: "boolean", default: false },
    json: { type: "string" },
    md: { type: "boolean", default: false },
    only: { type: "string" },
    fleet: { type: "string" },
    "fleet-streams": { type: "string", default: "10000,100000" },
    "fleet-interval": { type: "string", default: "1" },
    "fleet-timeout": { type: "string", default: "120" },
    "fleet-processes": { type: "string" },
    agents: { type: "string" },
    "agents-streams": { type: "string", default: "5000" },
    "agents-timeout": { type: "string", default: "120" },
    "agents-settle": { type: "string", default: "15" },
    "agents-idle": { type: "string", default: "30" },
    "agents-node-args": { type: "string" },
    "agents-env": { type: "string" },
    tick: { type: "string" },
    "tick-streams": { type: "string", default: "10000,100000" },
    "plan-join": { type: "string" },
    "plan-join-streams": { type: "string", default: "100000" },
    "node-args": { type: "string" },
  },
  allowPositionals: false,
});
const jsonFile = values.json;
const quick = values.quick === true;
const md = values.md === true;
/** --only movement,hashed,timing: run just these parts. */
const only = new Set(
  values.only !== undefined ? values.only.split(",") : values.fleet !== undefined ? ["fleet"] : values.agents !== undefined ? ["agents"] : quick ? ["movement", "hashed", "timing"] : ["movement", "hashed", "timing", "failover"],
);
/** A comma-separated list of positive numbers, or a clear error. */
/** `KEY=VALUE[,KEY=VALUE]` as settings; a malformed pair stops the run with its flag named. */
function settings(flag: string, raw: string | undefined): Record<string, string> | undefined {
  if (raw === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const pair of raw.split(",").filter(Boolean)) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair.trim());
    if (!m) {
      console.error(`--${flag}: expected KEY=VALUE[,KEY=VALUE], got "${pair}"`);
      process.exit(2);
    }
    out[m[1]!] = m[2]!;
  }
  return out;
}

/**
 * Runs this benchmark again in a process started with the production command's V8 flags
 * and `extra`, unless this is that process (BENCH_NODE_FLAGS names the flags it has).
 * Exits with its status.
 */
function underProductionFlags(extra: readonly string[]): void {
  const flags = [...productionCommand().flags, ...extra];
  if (process.env.BENCH_NODE_FLAGS !== undefined) {
    console.log(`node options: ${process.env.BENCH_NODE_FLAGS || "none"} (the production command's${extra.length > 0 ? " and --node-args" : ""})`);
    return;
  }
  const r = spawnSync(process.execPath, [...flags, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, BENCH_NODE_FLAGS: flags.join(" ") },
  });
  process.exit(r.status ?? 1);
}

function numbers(flag: string, raw: string): number[] {
  const xs = raw.split(",").map((x) => Number(x.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x <= 0)) {
    console.error(`--${flag}=${raw}: expected positive numbers separated by commas`);
    process.exit(2);
  }
  return xs;
}
const fleetAgents = numbers("fleet", values.fleet ?? "100,300,1000").map(Math.round);
const fleetStreams = numbers("fleet-streams", values["fleet-streams"]!).map(Math.round);
const fleetIntervalS = numbers("fleet-interval", values["fleet-interval"]!)[0]!;
const fleetTimeoutS = numbers("fleet-timeout", values["fleet-timeout"]!)[0]!;
const fleetProcesses = values["fleet-processes"] === undefined ? undefined : Math.round(numbers("fleet-processes", values["fleet-processes"])[0]!);
const agentsCount = Math.round(numbers("agents", values.agents ?? "16")[0]!);
const agentsStreams = Math.round(numbers("agents-streams", values["agents-streams"]!)[0]!);
const agentsTimeoutS = numbers("agents-timeout", values["agents-timeout"]!)[0]!;
const agentsSettleS = numbers("agents-settle", values["agents-settle"]!)[0]!;
const agentsIdleS = numbers("agents-idle", values["agents-idle"]!)[0]!;
const started = performance.now();
const table = tableFor(md);
if (values.tick !== undefined || values["plan-join"] !== undefined) underProductionFlags(values["node-args"]?.split(" ").filter(Boolean) ?? []);
if (values.tick !== undefined) {
  const members = numbers("tick", values.tick).map(Math.round);
  const streams = numbers("tick-streams", values["tick-streams"]!).map(Math.round);
  await runTick(streams.flatMap((s) => members.map((m) => ({ members: m, streams: s }))), (line) => console.log(`  ${line}`));
  process.exit(0);
}
if (values["plan-join"] !== undefined) {
  const members = numbers("plan-join", values["plan-join"]).map(Math.round);
  const streams = numbers("plan-join-streams", values["plan-join-streams"]!).map(Math.round);
  console.log(`fingerv7 sidecar join plan benchmark: node ${process.version}, load average ${os.loadavg()[0]!.toFixed(2)}`);
  runPlanJoin(streams.flatMap((s) => members.map((m) => ({ members: m, streams: s }))), table);
  process.exit(0);
}

// ---------------------------------------------------------------- main

const cpu = os.cpus()[0]?.model ?? "unknown";
console.log(
  `fingerv7 sidecar assignor benchmark${quick ? " (quick)" : ""}: node ${process.version}, ${os.cpus().length} × ${cpu}, ` +
    `load average ${os.loadavg()[0]!.toFixed(2)}, SIMD hash kernel ${simdKernelAvailable() ? "on" : "off"}`,
);

const movementSizes: [number, number, Profile][] = quick
  ? [[10_000, 100, "mixed"]]
  : [[1_000, 10, "mixed"], [10_000, 100, "mixed"], [10_000, 100, "uniform"], [100_000, 1_000, "mixed"]];
const moveResults = !only.has("movement") ? [] : movementSizes.map(([n, m, p]) => ({ streams: n, members: m, profile: p, results: movement(table, n, m, p) }));

const switchSizes: [number, number][] = quick
  ? [[500, 100], [2_000, 100], [10_000, 100]]
  : [[200, 100], [500, 100], [1_000, 100], [2_000, 100], [5_000, 100], [10_000, 100], [100_000, 100], [100_000, 1_000]];
const switchResults = only.has("hashed") ? hashedFallback(table, switchSizes, quick ? 10 : 30) : [];

const grid: [number, number][] = [1_000, 10_000, 100_000].flatMap((n) => [10, 100, 1_000].map((m) => [n, m] as [number, number]));
const timingResults = !only.has("timing")
  ? []
  : [...timing(table, grid, quick ? 3 : 7, STRATEGIES, ["mixed"]), ...timing(table, quick ? [[100_000, 1_000]] : grid, quick ? 3 : 7, [assignor], ["uniform"])];

// ---------------------------------------------------------------- 4. failover (real processes)

const failoverResults = !only.has("failover")
  ? []
  : await runFailover({ log: (line) => console.log(`  ${line}`) }).then((rows) => {
      table(
        "Failover with the default timings (3 agent processes, 90 streams, a worker beside each)",
        ["failure", "streams", "longest unserved", "overlap samples", "note"],
        rows.map((r) => [r.scenario, r.affected, `${r.longestUnservedS.toFixed(2)} s`, r.overlapSamples, r.note]),
        "longest unserved = the longest any stream had no worker, sampled every 20 ms; overlap samples must be 0.",
      );
      return rows;
    });

// ---------------------------------------------------------------- 5. fleet (many agents, real stores)

const fleetResults: FleetResult[] = !only.has("fleet")
  ? []
  : await runFleet(
      fleetStreams.flatMap((streams) => fleetAgents.map((agents) => ({ agents, streams }))),
      { intervalS: fleetIntervalS, timeoutS: fleetTimeoutS, processes: fleetProcesses, log: (line) => console.log(`  ${line}`) },
    ).then((rows) => {
      const f = (x: number | null, d = 1) => (x === null ? "—" : x.toFixed(d));
      table(
        `Fleet: N members over P processes (real heartbeat, tracker, elector, leader loop), private PostgreSQL and Redis, HEARTBEAT_INTERVAL ${fleetIntervalS} s`,
        ["agents × streams", "processes", "coverage s", "Redis cmds/agent/interval", "scripts/agent/interval", "PG stmts/s", "tick ms", "join tick ms", "join e2e ms", "RSS MB/agent", "CPU %/agent", "note"],
        rows.map((r) => [
          `${r.agents} × ${r.streams.toLocaleString("en")}`,
          r.processes,
          f(r.coverageS),
          f(r.redisCommandsPerAgentPerInterval),
          f(r.redisScriptsPerAgentPerInterval, 2),
          `${f(r.pgStatementsPerS, 0)}${r.pgSource === "xact_commit" ? " (xact)" : ""}`,
          f(r.tickSteadyMs),
          f(r.tickJoinMs),
          f(r.joinEndToEndMs, 0),
          f(r.rssPerAgentMB, 2),
          f(r.cpuPerAgentPct, 2),
          r.note,
        ]),
        "PG stmts/s from pg_stat_statements calls, or from pg_stat_database xact_commit when marked (xact). Redis commands from INFO commandstats, those run inside scripts included.",
      );
      return rows;
    });

// ---------------------------------------------------------------- 6. agent processes (cold start, memory, idle CPU)

const agentsResult: AgentsResult | undefined = !only.has("agents")
  ? undefined
  : await runAgents({ agents: agentsCount, streams: agentsStreams, timeoutS: agentsTimeoutS, settleS: agentsSettleS, idleS: agentsIdleS, nodeArgs: values["agents-node-args"]?.split(" ").filter(Boolean), env: settings("agents-env", values["agents-env"]), log: (line) => console.log(`  ${line}`) }).then((r) => {
      for (const t of agentsTables(r, { settleS: agentsSettleS, idleS: agentsIdleS })) table(t.title, t.head, t.rows, t.note);
      return r;
    });

const seconds = (performance.now() - started) / 1000;
console.log(`\ndone in ${seconds.toFixed(1)} s`);

if (jsonFile !== undefined) {
  const file = jsonFile;
  mkdirSync(path.dirname(file), { recursive: true });
  const report = {
    generatedAt: new Date().toISOString(),
    quick,
    machine: { node: process.version, cpus: os.cpus().length, cpu, loadAverage: os.loadavg(), simdKernel: simdKernelAvailable() },
    policy: LEADER_POLICY,
    targets: { movesRatio: 1.01, maxDeviation: 1, hashedSwitch: 0.1, ms100kx1000: 100 },
    movement: moveResults,
    hashedSwitch: switchResults,
    timing: timingResults,
    failover: failoverResults,
    fleet: fleetResults,
    agents: agentsResult,
    seconds,
  };
  writeFileSync(file, JSON.stringify(report, null, 2));
  console.log(`wrote ${file}`);
}

// A fleet that overwhelmed this process may leave timers and sockets behind after its
// bounded stop (bench/fleet.ts): end here rather than wait for them.
if (only.has("fleet") || only.has("agents")) process.exit(0);
