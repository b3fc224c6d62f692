/**
 * The placement benchmarks (pure, in this process): movement and balance of the assignor
 * against the baselines of ./strategies.ts on join, leave, capacity change and catalog
 * growth; what a flip to hashed mode moves, fresh and after churn; compute time. Each
 * prints its table through the `Table` it is given and returns its numbers; nothing here
 * asserts.
 */
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
import { assignor, LEADER_POLICY, STRATEGIES, type Strategy } from "./strategies.js";
import { ms, pct, ratio, type Table } from "./tables.js";

// ---------------------------------------------------------------- 1. movement and balance

export interface EventResult {
  readonly moves: number;
  readonly minimum: number;
  readonly maxDeviation: number;
  readonly unassigned: number;
  readonly overCapacity: number;
  /** Assignor only: moves when computing again right after (0 = fixed point). */
  readonly again?: number;
}
export interface StrategyResult {
  readonly strategy: string;
  readonly initial: ReturnType<typeof balance> & { readonly hashedSwitch: number };
  readonly events: Record<EventKind, EventResult>;
}

export function movement(table: Table, n: number, m: number, profile: Profile): StrategyResult[] {
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

export interface SwitchResult {
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

export function hashedFallback(table: Table, sizes: readonly [number, number][], churnEvents: number): SwitchResult[] {
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

export interface TimingResult {
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

export function timing(table: Table, grid: readonly [number, number][], runs: number, strategies: readonly Strategy[], profiles: readonly Profile[]): TimingResult[] {
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
