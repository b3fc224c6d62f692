/**
 * Join plan benchmark (`npm run bench -- --plan-join=100[,1000] [--plan-join-streams=100000]`):
 * what shared/placement/plan.ts costs when one member joins, alone in this process (pure:
 * no store, no reads, no writes), and how much of that cost is the state of the
 * JavaScript engine rather than the work.
 *
 * A cluster of M members with equal capacities (1.5 × N in all) settles N streams (rows
 * applied as the leader's mirror applies them, prompt workers holding what their rows
 * give them). Then members join one after another. A join is two plans: the first marks
 * the newcomer's share `revoking` on its owners; the owners release it; the second hands
 * it to the newcomer. Three conditions, each in a fresh copy of the cluster:
 * - first: the first join of that size (for the first size, the first join this process
 *   plans: the join's code paths have not run yet, as a new leader meets its first join);
 * - warm: joins in a row, the median of the last three (the best case: the engine has
 *   compiled the join's code for these shapes);
 * - collected: before each join, three full garbage collections while plan() does not run,
 *   as a leader's steady ticks bring between two changes (its plan memo reuses the last
 *   plan: leader/memo.ts), the median of three.
 * For each: the two plans' wall times, under the production command's V8 flags (bench/run.ts
 * starts this process with them). Measures, never asserts. Not for production.
 */
import v8 from "node:v8";
import vm from "node:vm";
import type { MemberView } from "../shared/membership.js";
import { plan, type InstanceRow, type Plan, type PlanInput, type Row } from "../shared/placement/plan.js";
import { RowsLog } from "../shared/placement/rows-index.js";
import type { Heartbeat, Stream, StreamId } from "../shared/types.js";
import { median } from "./measure.js";
import { ms, type Table } from "./tables.js";

export interface PlanJoinSize {
  readonly members: number;
  readonly streams: number;
}

export interface PlanJoinResult extends PlanJoinSize {
  /** Streams the newcomer receives (the second plan's puts). */
  readonly share: number;
  /** [revoke plan, handover plan] wall times, ms. */
  readonly first: readonly [number, number];
  readonly warm: readonly [number, number];
  readonly collected: readonly [number, number];
}

/** One settled cluster and its rows as the leader's mirror keeps them. */
class Cluster {
  private readonly catalog: Stream[];
  private readonly rows = new Map<StreamId, Row>();
  private readonly log = new RowsLog(8);
  private version = 1;
  private readonly held = new Map<string, StreamId[]>();
  private readonly versions = new Map<string, number>();
  readonly ids: string[];
  private readonly capacity: number;

  constructor(size: PlanJoinSize) {
    this.catalog = Array.from({ length: size.streams }, (_, i) => ({ id: String(i + 1), url: `http://radio.example/${i + 1}`, name: `Stream ${i + 1}`, metadata: {} }));
    this.ids = Array.from({ length: size.members }, (_, i) => `pj-${String(i).padStart(4, "0")}`);
    this.capacity = Math.ceil((1.5 * size.streams) / size.members);
    for (const id of this.ids) this.held.set(id, []);
    for (let i = 0; i < 6; i++) if (this.apply(plan(this.input())) === 0) return;
    throw new Error("plan-join: the cluster did not settle");
  }

  input(): PlanInput {
    const members = new Map<string, MemberView>();
    for (const id of this.ids) {
      const hb = { id, seq: 1, session: "s", capacity: this.capacity, draining: false, mode: "orchestrated", useOrchestrator: true, version: this.versions.get(id) ?? 0, held: this.held.get(id)!, leaving: false, restarting: false, worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "", host: "", location: "", software: "" } as unknown as Heartbeat;
      members.set(id, { id, hb, present: true, status: "alive", silentMs: 0, firstSeenAt: 0 } as MemberView);
    }
    return {
      epoch: 1,
      flag: "orchestrated",
      catalog: this.catalog,
      rows: this.rows,
      rowsJournal: this.log.as(this.version),
      instances: new Map<string, InstanceRow>(this.ids.map((id) => [id, { id, draining: false, version: this.versions.get(id) ?? 0, epoch: 1, status: "active" }])),
      members,
      policy: { imbalanceThreshold: 0.15, maxStreamDifference: 2, rebalanceAllowed: true, force: false },
      requireWorker: false,
    };
  }

  /** Applies a plan as the store's mirror does, then lets every worker hold what its rows give it; returns the row operations. */
  apply(p: Plan): number {
    for (const id of p.bump) this.versions.set(id, (this.versions.get(id) ?? 0) + 1);
    const changed: StreamId[] = [];
    for (const op of p.ops) {
      if (op.op === "put") this.rows.set(op.row.stream, op.row), changed.push(op.row.stream);
      else if (op.op === "delete") this.rows.delete(op.stream), changed.push(op.stream);
      else {
        const r = this.rows.get(op.stream)!;
        this.rows.set(op.stream, op.op === "revoke" ? { ...r, state: "revoking", next: op.next, reason: op.reason, revokeVersion: this.versions.get(op.owner) ?? null } : { ...r, next: op.next });
        changed.push(op.stream);
      }
    }
    if (changed.length > 0) this.log.record(this.version, ++this.version, changed);
    const mine = new Map<string, StreamId[]>(this.ids.map((id) => [id, []]));
    for (const r of this.rows.values()) if (r.state === "active") mine.get(r.owner)?.push(r.stream);
    for (const id of this.ids) {
      const rows = new Set(mine.get(id));
      const before = this.held.get(id)!;
      const kept = before.filter((s) => rows.has(s));
      for (const s of kept) rows.delete(s);
      if (rows.size > 0 || kept.length !== before.length) this.held.set(id, [...kept, ...rows]);
    }
    return p.ops.length;
  }

  /** One member more: the two plans' times and the newcomer's share. */
  join(tag: string): { times: [number, number]; share: number } {
    const id = `pj-new-${tag}`;
    this.ids.push(id);
    this.held.set(id, []);
    const times: number[] = [];
    let share = 0;
    for (let step = 0; step < 2; step++) {
      const t0 = performance.now();
      const p = plan(this.input());
      times.push(performance.now() - t0);
      if (step === 1) share = p.ops.filter((op) => op.op === "put" && op.row.owner === id).length;
      this.apply(p);
    }
    return { times: [times[0]!, times[1]!], share };
  }
}

/**
 * Three full garbage collections, as minutes of a leader's steady ticks bring: V8's gc(),
 * exposed for this benchmark (--expose-gc set at run time, the function taken from a new
 * context, where V8 installs it).
 */
function collect(): void {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  for (let i = 0; i < 3; i++) gc();
}

const medianPair = (xs: readonly (readonly [number, number])[]): [number, number] => [median(xs.map((x) => x[0])), median(xs.map((x) => x[1]))];

export function runPlanJoin(sizes: readonly PlanJoinSize[], table: Table): PlanJoinResult[] {
  const out: PlanJoinResult[] = [];
  for (const size of sizes) {
    const first = new Cluster(size).join("first");
    const warmCluster = new Cluster(size);
    const warm: [number, number][] = [];
    for (let i = 0; i < 6; i++) warm.push(warmCluster.join(`w${i}`).times);
    const collectedCluster = new Cluster(size);
    const collected: [number, number][] = [];
    for (let i = 0; i < 3; i++) {
      collect();
      collected.push(collectedCluster.join(`c${i}`).times);
    }
    out.push({ ...size, share: first.share, first: first.times, warm: medianPair(warm.slice(-3)), collected: medianPair(collected) });
  }
  table(
    "A join's two plans (shared/placement/plan.ts alone, in this process): revoke, then hand over, ms",
    ["members × streams", "newcomer's share", "first join", "warm", "after collections"],
    out.map((r) => [`${r.members} × ${r.streams.toLocaleString("en")}`, r.share, `${ms(r.first[0])} + ${ms(r.first[1])}`, `${ms(r.warm[0])} + ${ms(r.warm[1])}`, `${ms(r.collected[0])} + ${ms(r.collected[1])}`]),
    "first: the first join of that size (of the process, for the first size); warm: the last three of six joins in a row (medians); after collections: each join after three full garbage collections while plan() does not run, as between a leader's changes (medians of three).",
  );
  return out;
}
