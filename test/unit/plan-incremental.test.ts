/**
 * plan() keeps what it derives across calls (shared/placement/catalog-index.ts: positions,
 * hashes, each member's held list matched in order against its last one;
 * shared/placement/rows-index.ts: the rows by position, updated from the rows' journal),
 * yet stays pure from the caller's side: over random sequences of changes (plans applied
 * as the store's mirror applies them, rows edited, held lists changed, reordered or
 * repeated, members coming and going, the catalog replaced), every plan equals the plan
 * of a fresh copy of the same input (new arrays and maps, no journal: nothing kept).
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { MemberStatus, MemberView } from "../../shared/membership.js";
import { plan, type InstanceRow, type Plan, type PlanInput, type Row } from "../../shared/placement/plan.js";
import { RowsLog } from "../../shared/placement/rows-index.js";
import type { Heartbeat, Stream, StreamId } from "../../shared/types.js";

const IDS = ["a", "b", "c", "d"];
const sid = fc.integer({ min: 1, max: 40 }).map(String);
const stream = (id: string, v = 0): Stream => ({ id, url: `u${id}`, name: `n${id}`, metadata: { v } });

const change = fc.record({
  apply: fc.boolean(),
  member: fc.integer({ min: 0, max: IDS.length - 1 }),
  drop: fc.array(fc.nat(), { maxLength: 4 }),
  add: fc.array(sid, { maxLength: 4 }),
  reverse: fc.integer({ min: 0, max: 5 }).map((x) => x === 0),
  status: fc.option(fc.constantFrom<MemberStatus>("alive", "alive", "warning", "dead", "left"), { nil: undefined }),
  version: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
  rows: fc.array(fc.record({ stream: sid, owner: fc.option(fc.constantFrom(...IDS, "gone"), { nil: null }), revoking: fc.boolean(), next: fc.option(fc.constantFrom(...IDS), { nil: null }) }), { maxLength: 3 }),
  catalog: fc.option(fc.record({ add: fc.array(sid, { maxLength: 4 }), drop: fc.array(sid, { maxLength: 4 }), edit: fc.option(sid, { nil: undefined }) }), { nil: undefined }),
  force: fc.boolean(),
  copies: fc.boolean(),
});

interface World {
  catalog: Stream[];
  readonly rows: Map<StreamId, Row>;
  readonly log: RowsLog;
  version: number;
  readonly held: Map<string, StreamId[]>;
  readonly status: Map<string, MemberStatus>;
  readonly versions: Map<string, number>;
}

function input(w: World, force: boolean, fresh: boolean, copies = fresh): PlanInput {
  // A heartbeat's list may be a new array of new strings on every read, changed or not.
  const copy = (ids: readonly StreamId[]) => (copies ? (JSON.parse(JSON.stringify(ids)) as StreamId[]) : ids);
  const members = new Map<string, MemberView>();
  for (const id of IDS) {
    const hb = { id, seq: 1, session: "s", capacity: 12, draining: false, mode: "orchestrated", useOrchestrator: true, version: w.versions.get(id)!, held: copy(w.held.get(id)!), leaving: w.status.get(id) === "left", restarting: false, worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "", host: "", location: "", software: "" } as Heartbeat;
    members.set(id, { id, hb, present: true, status: w.status.get(id)!, silentMs: 0, firstSeenAt: 0 });
  }
  return {
    epoch: 1,
    flag: "orchestrated",
    catalog: fresh ? w.catalog.map((s) => ({ ...s })) : w.catalog,
    rows: fresh ? new Map(JSON.parse(JSON.stringify([...w.rows])) as [StreamId, Row][]) : w.rows,
    rowsJournal: fresh ? undefined : w.log.as(w.version),
    instances: new Map<string, InstanceRow>(IDS.map((id) => [id, { id, draining: false, version: w.versions.get(id)!, epoch: 1, status: "active" }])),
    members,
    policy: { imbalanceThreshold: 0.15, maxStreamDifference: 2, rebalanceAllowed: true, force },
    requireWorker: false,
  };
}

/** What the store's mirror does with a committed plan (leader/store.ts), and the journal. */
function write(w: World, streams: StreamId[], f: () => void): void {
  f();
  if (streams.length === 0) return;
  w.log.record(w.version, w.version + 1, streams);
  w.version++;
}

function applyPlan(w: World, p: Plan): void {
  for (const id of p.bump) w.versions.set(id, (w.versions.get(id) ?? 0) + 1);
  write(w, p.ops.map((op) => (op.op === "put" ? op.row.stream : op.stream)), () => {
    for (const op of p.ops) {
      if (op.op === "put") w.rows.set(op.row.stream, op.row);
      else if (op.op === "delete") w.rows.delete(op.stream);
      else {
        const r = w.rows.get(op.stream)!;
        w.rows.set(op.stream, op.op === "revoke" ? { ...r, state: "revoking", next: op.next, reason: op.reason, revokeVersion: w.versions.get(op.owner) ?? null } : { ...r, next: op.next });
      }
    }
  });
  // Prompt workers: each holds what its rows give it.
  for (const id of IDS) {
    const mine = [...w.rows.values()].filter((r) => r.owner === id && r.state === "active").map((r) => r.stream);
    const kept = w.held.get(id)!.filter((s) => mine.includes(s));
    const list = [...kept, ...mine.filter((s) => !kept.includes(s))];
    if (list.join() !== w.held.get(id)!.join()) w.held.set(id, list);
  }
}

/** Maps and sets as entry lists, so that order counts where plan's output has one. */
function norm(v: unknown): unknown {
  if (v instanceof Map) return [...v].map(([k, x]) => [k, norm(x)]);
  if (v instanceof Set) return [...v];
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
}

describe("plan with what it keeps across calls", () => {
  it("equals the plan of a fresh copy of its input, over any sequence of changes", () => {
    fc.assert(
      fc.property(fc.uniqueArray(sid, { maxLength: 30 }), fc.array(change, { minLength: 1, maxLength: 12 }), (ids, changes) => {
        const w: World = { catalog: ids.map((id) => stream(id)), rows: new Map(), log: new RowsLog(4), version: 1, held: new Map(IDS.map((id) => [id, []])), status: new Map(IDS.map((id) => [id, "alive"])), versions: new Map(IDS.map((id) => [id, 1])) };
        for (const c of changes) {
          const m = IDS[c.member]!;
          const list = w.held.get(m)!.filter((_, i) => !c.drop.includes(i));
          list.push(...c.add);
          if (c.reverse) list.reverse();
          if (c.drop.length > 0 || c.add.length > 0 || c.reverse) w.held.set(m, list);
          if (c.status) w.status.set(m, c.status);
          if (c.status === "left") w.held.set(m, []);
          if (c.version !== undefined) w.versions.set(m, c.version);
          write(w, c.rows.map((r) => r.stream), () => {
            for (const r of c.rows) {
              if (r.owner === null) w.rows.delete(r.stream);
              else w.rows.set(r.stream, { stream: r.stream, owner: r.owner, state: r.revoking ? "revoking" : "active", next: r.revoking ? r.next : null, revokeVersion: r.revoking ? 2 : null, reason: "catalog", url: `u${r.stream}`, name: `n${r.stream}`, metadata: { v: 0 } });
            }
          });
          if (c.catalog) {
            const { add, drop, edit } = c.catalog;
            w.catalog = [...w.catalog.filter((s) => !drop.includes(s.id)).map((s) => (s.id === edit ? stream(s.id, 1) : s)), ...add.map((id) => stream(id))];
          }
          const kept = plan(input(w, c.force, false, c.copies));
          expect(norm(kept)).toEqual(norm(plan(input(w, c.force, true))));
          if (c.apply) applyPlan(w, kept);
        }
      }),
      { numRuns: 1500 },
    );
  });
});
