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
 * --fleet-streams=10000,100000, --fleet-interval=1 (HEARTBEAT_INTERVAL, seconds) and
 * --fleet-timeout=120 (seconds allowed to reach full coverage). --agents[=16] runs only the
 * agent-process benchmark (bench/agents.ts: cold start, memory and idle CPU of real agent
 * processes) with --agents-streams=5000, --agents-timeout=120 (seconds allowed to cover),
 * --agents-settle=15 and --agents-idle=30 (seconds before memory is read, and of the idle
 * CPU window) and --agents-node-args="…" (Node.js options added to the production
 * command's, to compare V8 flags).
 * --tick=100[,1000] runs only the leader tick benchmark (bench/leader-tick.ts): one leader
 * alone in this process with that many simulated members, at --tick-streams=10000,100000.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { assign } from "../shared/placement/assignor.js";
import {
  applyEvent,
  balance,
  countMoves,
  EVENTS,
  hashedFlip,
  hashedSwitch,
  hashedSwitchFloor,
  idealLoads,
  makeCluster,
  minimumMoves,
  prng,
  settle,
  time,
  type Cluster,
  type EventKind,
  type Profile,
} from "./measure.js";
import { simdKernelAvailable } from "../shared/placement/hash.js";
import { assignor, LEADER_POLICY, STRATEGIES, type Strategy } from "./strategies.js";
import { runFailover } from "./failover.js";
import { runFleet, type FleetResult } from "./fleet.js";
import { agentsTables, runAgents, type AgentsResult } from "./agents.js";
import { runTick } from "./leader-tick.js";

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
    agents: { type: "string" },
    "agents-streams": { type: "string", default: "5000" },
    "agents-timeout": { type: "string", default: "120" },
    "agents-settle": { type: "string", default: "15" },
    "agents-idle": { type: "string", default: "30" },
    "agents-node-args": { type: "string" },
    tick: { type: "string" },
    "tick-streams": { type: "string", default: "10000,100000" },
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
const agentsCount = Math.round(numbers("agents", values.agents ?? "16")[0]!);
const agentsStreams = Math.round(numbers("agents-streams", values["agents-streams"]!)[0]!);
const agentsTimeoutS = numbers("agents-timeout", values["agents-timeout"]!)[0]!;
const agentsSettleS = numbers("agents-settle", values["agents-settle"]!)[0]!;
const agentsIdleS = numbers("agents-idle", values["agents-idle"]!)[0]!;
const started = performance.now();
if (values.tick !== undefined) {
  const members = numbers("tick", values.tick).map(Math.round);
  const streams = numbers("tick-streams", values["tick-streams"]!).map(Math.round);
  await runTick(streams.flatMap((s) => members.map((m) => ({ members: m, streams: s }))), (line) => console.log(`  ${line}`));
  process.exit(0);
}

// ---------------------------------------------------------------- formatting

function table(title: string, head: string[], rows: (string | number)[][], note?: string): void {
  const cells = rows.map((r) => r.map(String));
  if (md) {
    console.log(`\n**${title}**\n`);
    console.log(`| ${head.join(" | ")} |`);
    console.log(`| ${head.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`);
    for (const r of cells) console.log(`| ${r.join(" | ")} |`);
    if (note) console.log(`\n${note}`);
    return;
  }
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  ");
  console.log(`\n${title}\n${"=".repeat(title.length)}`);
  console.log(line(head));
  console.log(w.map((n) => "-".repeat(n)).join("  "));
  for (const r of cells) console.log(line(r));
  if (note) console.log(note);
}
const ratio = (moves: number, min: number) => (min === 0 ? (moves === 0 ? "1.00" : `∞ (${moves})`) : (moves / min).toFixed(2));
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));

// ---------------------------------------------------------------- 1. movement and balance

interface EventResult {
  readonly moves: number;
  readonly minimum: number;
  readonly maxDeviation: number;
  readonly unassigned: number;
  readonly overCapacity: number;
  /** Assignor only: moves when computing again right after (0 = fixed point). */
  readonly again?: number;
}
interface StrategyResult {
  readonly strategy: string;
  readonly initial: ReturnType<typeof balance> & { readonly hashedSwitch: number };
  readonly events: Record<EventKind, EventResult>;
}

function movement(n: number, m: number, profile: Profile): StrategyResult[] {
  const cluster = makeCluster(n, m, profile);
  const ideal = idealLoads(cluster);
  const out: StrategyResult[] = [];
  for (const s of STRATEGIES) {
    const before = settle(s, cluster);
    const initial = { ...balance(before, cluster), hashedSwitch: hashedSwitch(before, cluster) };
    const events = {} as Record<EventKind, EventResult>;
    for (const kind of EVENTS) {
      const ev = applyEvent(cluster, kind);
      const after = s.place({ streams: ev.after.streams, members: ev.after.members, previous: before, dead: ev.dead, reason: ev.reason });
      const r: EventResult = {
        moves: countMoves(before, after, ev.after.streams),
        minimum: minimumMoves(ideal, ev.after),
        ...balance(after, ev.after),
      };
      if (s === assignor) {
        const again = s.place({ streams: ev.after.streams, members: ev.after.members, previous: after, dead: new Set(), reason: "imbalance" });
        events[kind] = { ...r, again: countMoves(after, again, ev.after.streams) };
      } else events[kind] = r;
    }
    out.push({ strategy: s.name, initial, events });
  }
  const title = `${n.toLocaleString("en")} streams × ${m.toLocaleString("en")} members, ${profile} capacities (Σcap = 1.5 × streams)`;
  table(
    title,
    ["strategy", "join", "leave", "capacity", "growth", "max dev", "unassigned", "over cap", "→ hashed"],
    out.map((r) => {
      const all = [r.initial, ...EVENTS.map((k) => r.events[k])];
      return [
        r.strategy,
        ...EVENTS.map((k) => ratio(r.events[k].moves, r.events[k].minimum)),
        Math.max(...all.map((b) => b.maxDeviation)).toFixed(2),
        Math.max(...all.map((b) => b.unassigned)),
        Math.max(...all.map((b) => b.overCapacity)),
        pct(r.initial.hashedSwitch),
      ];
    }),
    `minimum moves: join ${out[0]!.events.join.minimum}, leave ${out[0]!.events.leave.minimum}, capacity ${out[0]!.events.capacity.minimum}, growth ${out[0]!.events.growth.minimum}` +
      `; assignor recomputed after each event moved ${EVENTS.map((k) => out[0]!.events[k].again).join("/")} (fixed point = 0)`,
  );
  return out;
}

// ---------------------------------------------------------------- 2. orchestrated → hashed

interface SwitchResult {
  readonly streams: number;
  readonly members: number;
  readonly perMember: number;
  readonly fresh: number;
  readonly floor: number;
  readonly approx: number;
  readonly afterChurn: number;
  readonly floorAfterChurn: number;
  /** What the flip to hashed mode moves (hashed mode keeps what live members hold). */
  readonly flipFresh: number;
  readonly flipAfterChurn: number;
  readonly churnEvents: number;
}

/** Random joins, leaves, capacity changes, catalog growth and shrinkage, applied as the leader would. */
function churn(start: Cluster, events: number, seed: number): { cluster: Cluster; assignment: Map<string, string> } {
  const rnd = prng(seed);
  let c = start;
  let a = assign({ streams: c.streams, members: c.members.map((m) => ({ ...m, draining: false })), current: new Map(), policy: LEADER_POLICY }).assignment;
  let nextId = 0;
  let nextStream = c.streams.reduce((x, s) => Math.max(x, Number(s)), 0) + 1;
  const caps = [...new Set(start.members.map((m) => m.capacity))];
  for (let e = 0; e < events; e++) {
    const r = rnd();
    let dead = new Set<string>();
    let reason: "join" | "failover" | "capacity" | "catalog" = "catalog";
    if (r < 0.3) {
      c = { ...c, members: [...c.members, { id: `fp-j${nextId++}`, capacity: caps[Math.floor(rnd() * caps.length)]! }] };
      reason = "join";
    } else if (r < 0.6 && c.members.length > 2) {
      const gone = c.members[Math.floor(rnd() * c.members.length)]!;
      c = { ...c, members: c.members.filter((m) => m !== gone) };
      dead = new Set([gone.id]);
      reason = "failover";
    } else if (r < 0.75) {
      const i = Math.floor(rnd() * c.members.length);
      c = { ...c, members: c.members.map((m, k) => (k === i ? { ...m, capacity: caps[Math.floor(rnd() * caps.length)]! } : m)) };
      reason = "capacity";
    } else if (r < 0.9) {
      const extra = Math.max(1, Math.round(c.streams.length * 0.02));
      c = { ...c, streams: [...c.streams, ...Array.from({ length: extra }, () => String(nextStream++))] };
    } else {
      c = { ...c, streams: c.streams.filter(() => rnd() >= 0.02) };
    }
    a = assign({ streams: c.streams, members: c.members.map((m) => ({ ...m, draining: false })), current: a, dead, policy: { ...LEADER_POLICY, rebalanceReason: reason } }).assignment;
  }
  return { cluster: c, assignment: a };
}

function hashedFallback(sizes: readonly [number, number][], churnEvents: number): SwitchResult[] {
  const out: SwitchResult[] = [];
  for (const [n, m] of sizes) {
    const c = makeCluster(n, m, "mixed");
    const fresh = assignor.place({ streams: c.streams, members: c.members, previous: null, dead: new Set(), reason: "catalog" });
    const churned = churn(c, churnEvents, n + m);
    out.push({
      streams: n,
      members: m,
      perMember: n / m,
      fresh: hashedSwitch(fresh, c),
      floor: hashedSwitchFloor(c),
      approx: 0.4 / Math.sqrt(n / m),
      afterChurn: hashedSwitch(churned.assignment, churned.cluster),
      floorAfterChurn: hashedSwitchFloor(churned.cluster),
      flipFresh: hashedFlip(fresh, c, LEADER_POLICY),
      flipAfterChurn: hashedFlip(churned.assignment, churned.cluster, LEADER_POLICY),
      churnEvents,
    });
  }
  table(
    "Orchestrated → hashed: what the flip moves, and how far the placement is from pure hashing (mixed capacities)",
    ["streams × members", "per member", "flip moves", `flip moves after ${churnEvents} events`, "≠ pure hashing", "least possible", "≈ 0.4/√per-member", `≠ pure after ${churnEvents} events`, "least then"],
    out.map((r) => [`${r.streams.toLocaleString("en")} × ${r.members}`, r.perMember, pct(r.flipFresh), pct(r.flipAfterChurn), pct(r.fresh), pct(r.floor), pct(r.approx), pct(r.afterChurn), pct(r.floorAfterChurn)]),
    "flip moves: streams hashed mode (the assignor over what live members hold) gives another owner than the leader's placement; ≠ pure hashing: streams pure weighted rendezvous hashing would place elsewhere (what a pure-hashing fallback would move); least possible: hashing's own binomial spread, which no placement within ±1 of the targets can avoid.",
  );
  return out;
}

// ---------------------------------------------------------------- 3. compute time

interface TimingResult {
  readonly strategy: string;
  readonly profile: Profile;
  readonly streams: number;
  readonly members: number;
  /** Median ms: a placement from scratch. */
  readonly scratch: number;
  /** Median ms of a tick on a settled assignment: nothing changed / one member joined / one left. */
  readonly idle?: number;
  readonly join?: number;
  readonly leave?: number;
}

function timing(grid: readonly [number, number][], runs: number, strategies: readonly Strategy[], profiles: readonly Profile[]): TimingResult[] {
  const out: TimingResult[] = [];
  for (const profile of profiles) {
    for (const [n, m] of grid) {
      const c = makeCluster(n, m, profile);
      for (const s of strategies) {
        const scratch = time(runs, () => s.place({ streams: c.streams, members: c.members, previous: null, dead: new Set(), reason: "catalog" }));
        if (s !== assignor) {
          out.push({ strategy: s.name, profile, streams: n, members: m, scratch });
          continue;
        }
        const settled = s.place({ streams: c.streams, members: c.members, previous: null, dead: new Set(), reason: "catalog" });
        const tick = (k: EventKind | null) => {
          const ev = k === null ? { after: c, dead: new Set<string>(), reason: "imbalance" as const } : applyEvent(c, k);
          return time(runs, () => s.place({ streams: ev.after.streams, members: ev.after.members, previous: settled, dead: ev.dead, reason: ev.reason }));
        };
        out.push({ strategy: s.name, profile, streams: n, members: m, scratch, idle: tick(null), join: tick("join"), leave: tick("leave") });
      }
    }
  }
  for (const profile of profiles) {
    const rows = out.filter((r) => r.profile === profile);
    const names = [...new Set(rows.map((r) => r.strategy))];
    table(
      `Compute time, ms (median of ${runs}), ${profile} capacities: assignor from scratch / settled tick with nothing changed / one join / one leave; baselines: full placement`,
      ["streams × members", ...names.flatMap((nm) => (nm === "assignor" ? ["scratch", "idle", "join", "leave"] : [nm]))],
      grid.map(([n, m]) =>
        [`${n.toLocaleString("en")} × ${m.toLocaleString("en")}`].concat(
          names.flatMap((nm) => {
            const r = rows.find((x) => x.strategy === nm && x.streams === n && x.members === m)!;
            return nm === "assignor" ? [ms(r.scratch), ms(r.idle!), ms(r.join!), ms(r.leave!)] : [ms(r.scratch)];
          }),
        ),
      ),
    );
  }
  return out;
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
const moveResults = !only.has("movement") ? [] : movementSizes.map(([n, m, p]) => ({ streams: n, members: m, profile: p, results: movement(n, m, p) }));

const switchSizes: [number, number][] = quick
  ? [[500, 100], [2_000, 100], [10_000, 100]]
  : [[200, 100], [500, 100], [1_000, 100], [2_000, 100], [5_000, 100], [10_000, 100], [100_000, 100], [100_000, 1_000]];
const switchResults = only.has("hashed") ? hashedFallback(switchSizes, quick ? 10 : 30) : [];

const grid: [number, number][] = [1_000, 10_000, 100_000].flatMap((n) => [10, 100, 1_000].map((m) => [n, m] as [number, number]));
const timingResults = !only.has("timing")
  ? []
  : [...timing(grid, quick ? 3 : 7, STRATEGIES, ["mixed"]), ...timing(quick ? [[100_000, 1_000]] : grid, quick ? 3 : 7, [assignor], ["uniform"])];

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
      { intervalS: fleetIntervalS, timeoutS: fleetTimeoutS, log: (line) => console.log(`  ${line}`) },
    ).then((rows) => {
      const f = (x: number | null, d = 1) => (x === null ? "—" : x.toFixed(d));
      table(
        `Fleet: N members in one process (real heartbeat, tracker, elector, leader loop), private PostgreSQL and Redis, HEARTBEAT_INTERVAL ${fleetIntervalS} s`,
        ["agents × streams", "coverage s", "Redis cmds/agent/interval", "scripts/agent/interval", "PG stmts/s", "tick ms", "join tick ms", "join e2e ms", "RSS MB/agent", "CPU %/agent", "note"],
        rows.map((r) => [
          `${r.agents} × ${r.streams.toLocaleString("en")}`,
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
  : await runAgents({ agents: agentsCount, streams: agentsStreams, timeoutS: agentsTimeoutS, settleS: agentsSettleS, idleS: agentsIdleS, nodeArgs: values["agents-node-args"]?.split(" ").filter(Boolean), log: (line) => console.log(`  ${line}`) }).then((r) => {
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
