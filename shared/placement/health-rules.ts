/**
 * Failure-aware placement: from the streams' health and the members' labels to the
 * constraints the assignor honours and the health changes the leader writes. PURE.
 *
 * Rules (each has a test in test/unit/health-rules.test.ts):
 * - Labels: a stream whose catalog constraint (STREAMS_PLACEMENT_COLUMN) no usable member
 *   satisfies is out of the placement ("no-matching-worker"); otherwise it may only be on
 *   members that satisfy it (a member that stops satisfying it loses it: "catalog").
 * - Degraded workers (their agent says so in its heartbeat: agent/stream-outcomes.ts)
 *   lose their streams ("worker-degraded") and get nothing new, and their streams'
 *   failures are not charged. When EVERY usable member is degraded nobody is treated as
 *   degraded: there is nowhere better to go.
 * - Failing: a stream whose current owner has reported it failing continuously for
 *   STREAM_FAILOVER_AFTER is charged a failure on that owner and moves ("failing"), never
 *   to a member it failed on within STREAM_FAILURE_MEMORY, preferring a member whose
 *   `exit` label differs from those it failed under.
 * - Quarantine: a stream charged on STREAM_QUARANTINE_AFTER distinct members since its
 *   last success, or with no member left to try, is quarantined: out of the placement
 *   ("quarantined"). When its retry is due it is placed again (on a member it did not
 *   fail on if there is one); failing there again re-quarantines it with the next retry
 *   twice as far (up to STREAM_FAILURE_MEMORY). A success ends it (the agent's write).
 * - Memory: a stream is placed on a member it failed on within the memory only when no
 *   other usable member may take it.
 * - No storms: failure-driven changes (a charge, a quarantine, a degraded worker's stream
 *   moving) spend `budget`, oldest episode first; what does not fit waits for the next tick.
 * Does not: read the clock (ages come measured, by PostgreSQL's clock), or guarantee when
 * a move completes (plan.ts's break-before-make handoff does).
 */
import type { StreamHealthSettings } from "../config.js";
import { formatLabels, satisfies, type Labels } from "../labels.js";
import type { HealthOp, HealthRecord, HealthView } from "../stream-health-store.js";
import type { MoveReason, Stream, StreamId, WorkerDegraded } from "../types.js";
import type { StreamConstraint } from "./assignor.js";

const NO_ONE: ReadonlySet<string> = new Set();
const exitOf = (m: HealthMember | undefined): string | null => m?.labels?.exit ?? null;

export interface HealthMember {
  readonly id: string;
  readonly labels: Labels | undefined;
  readonly degraded: WorkerDegraded | undefined;
}

export interface HealthRulesInput {
  readonly view: HealthView | undefined;
  readonly settings: StreamHealthSettings;
  /** Failure-driven changes this tick may make. */
  readonly budget: number;
  /** Members that may be given streams (live, orchestrated, not draining, capacity ≥ 1). */
  readonly usable: readonly HealthMember[];
  /** Streams in the placement, with their current owner (if any). */
  readonly streams: readonly Stream[];
  readonly owners: Pick<ReadonlyMap<StreamId, string>, "get">;
}

export interface HealthRulesResult {
  readonly constraints: Map<StreamId, StreamConstraint>;
  /** Streams taken out of the placement, and why. */
  readonly out: Map<StreamId, MoveReason>;
  readonly ops: HealthOp[];
  /** Members treated as degraded this tick. */
  readonly degraded: ReadonlySet<string>;
  /** Streams each degraded member loses this tick. */
  readonly evicted: ReadonlyMap<string, number>;
  /** Budget spent. */
  readonly spent: number;
}

export function healthRules(i: HealthRulesInput): HealthRulesResult {
  const s = i.settings;
  const constraints = new Map<StreamId, StreamConstraint>();
  const out = new Map<StreamId, MoveReason>();
  const ops: HealthOp[] = [];
  const evicted = new Map<string, number>();
  let budget = i.budget;

  const byId = new Map(i.usable.map((m) => [m.id, m]));
  const allDegraded = i.usable.length > 0 && i.usable.every((m) => m.degraded !== undefined);
  const degraded = new Set(allDegraded ? [] : i.usable.filter((m) => m.degraded !== undefined).map((m) => m.id));
  const healthy = i.usable.filter((m) => !degraded.has(m.id));

  // Members satisfying each distinct constraint, computed once per constraint.
  const matchCache = new Map<string, ReadonlySet<string>>();
  const matching = (c: Labels | undefined): ReadonlySet<string> | undefined => {
    if (!c || Object.keys(c).length === 0) return undefined;
    const key = formatLabels(c);
    let set = matchCache.get(key);
    if (!set) matchCache.set(key, (set = new Set(i.usable.filter((m) => satisfies(m.labels, c)).map((m) => m.id))));
    return set;
  };

  const view = i.view;
  const failing: { stream: Stream; owner: string; forMs: number }[] = [];
  for (const st of i.streams) {
    const match = matching(st.constraint);
    if (match && match.size === 0) {
      out.set(st.id, "no-matching-worker");
      continue;
    }
    const rec = view && view.records.size > 0 ? view.records.get(st.id) : undefined;
    const past = view && view.failures.size > 0 ? view.failures.get(st.id) : undefined;
    // No health record, no memory, no label, no degraded member: nothing below applies.
    if (!rec && !past && !match && degraded.size === 0) continue;
    const owner = i.owners.get(st.id);
    const memory: ReadonlySet<string> = past ? new Set(past.map((f) => f.instance)) : NO_ONE;
    if (rec?.quarantinedAt && !retryDue(rec)) {
      out.set(st.id, "quarantined");
      continue;
    }
    if (owner !== undefined && rec && rec.failingOn === owner && !degraded.has(owner) && failedLongEnough(rec, s)) {
      failing.push({ stream: st, owner, forMs: rec.failingForMs ?? 0 });
      continue;
    }
    const labelOk = (m: string) => !match || match.has(m);
    // A member it failed on is a last resort: only when no other healthy member may take it.
    const fresh = memory.size > 0 && healthy.some((m) => labelOk(m.id) && !memory.has(m.id));
    // Then a member under an exit it has not failed under (a geo-blocked stream fails under a whole exit).
    const exits = past ? new Set(past.map((f) => f.exit).filter((e): e is string => e !== null)) : NO_ONE;
    const rank = memory.size > 0 ? (m: string) => (memory.has(m) ? 2 : exits.has(exitOf(byId.get(m)) ?? "") ? 1 : 0) : undefined;
    if (owner !== undefined && degraded.has(owner)) {
      if (budget > 0) {
        budget--;
        evicted.set(owner, (evicted.get(owner) ?? 0) + 1);
        constraints.set(st.id, { allowed: (m) => labelOk(m) && m !== owner && (!fresh || !memory.has(m)), evict: true, reason: "worker-degraded", rank });
      }
      continue;
    }
    if (match || memory.size > 0) {
      // Label constraints evict (the catalog or a worker's labels changed); the memory only
      // steers placements: a stream that works where it is stays there.
      constraints.set(st.id, { allowed: (m) => labelOk(m) && (m === owner || !fresh || !memory.has(m)), evict: match !== undefined, reason: "catalog", rank });
    }
  }

  // Failing streams, oldest episode first, as far as the budget goes.
  failing.sort((a, b) => b.forMs - a.forMs || (a.stream.id < b.stream.id ? -1 : 1));
  for (const f of failing) {
    if (budget <= 0) break;
    budget--;
    const id = f.stream.id;
    const rec = view!.records.get(id)!;
    const owner = byId.get(f.owner);
    ops.push({ op: "charge", stream: id, instance: f.owner, exit: exitOf(owner), error: rec.lastError });
    const past = view!.failures.get(id) ?? [];
    const memory = new Set([...past.map((x) => x.instance), f.owner]);
    const inRow = new Set([...past.filter((x) => x.sinceOk).map((x) => x.instance), f.owner]);
    const match = matching(f.stream.constraint);
    const candidates = healthy.filter((m) => (!match || match.has(m.id)) && !memory.has(m.id));
    if (rec.quarantinedAt !== null) {
      // A quarantine retry that failed: out again, the next retry twice as far.
      ops.push({ op: "quarantine", stream: id, retries: rec.retries + 1, retryInMs: retryDelay(s, rec.retries + 1) });
      out.set(id, "quarantined");
    } else if (inRow.size >= s.quarantineAfter || candidates.length === 0) {
      ops.push({ op: "quarantine", stream: id, retries: 0, retryInMs: retryDelay(s, 0) });
      out.set(id, "quarantined");
    } else {
      const exits = new Set([...past.map((x) => x.exit), exitOf(owner)].filter((e): e is string => e !== null));
      const ok = new Set(candidates.map((m) => m.id));
      constraints.set(id, { allowed: (m) => ok.has(m), evict: true, reason: "failing", rank: (m) => (exits.has(exitOf(byId.get(m)) ?? "") ? 1 : 0) });
    }
  }
  return { constraints, out, ops, degraded, evicted, spent: i.budget - budget };
}

/**
 * The only two ways the rules read a record's ages (which grow with time): whether its
 * failure episode has lasted STREAM_FAILOVER_AFTER, and whether its quarantine retry is
 * due. Beyond these, only the episodes' order (their start, `failingSince`) matters.
 */
export function failedLongEnough(rec: Pick<HealthRecord, "failingForMs">, s: Pick<StreamHealthSettings, "failoverAfterMs">): boolean {
  return (rec.failingForMs ?? 0) >= s.failoverAfterMs;
}

export function retryDue(rec: Pick<HealthRecord, "retryInMs">): boolean {
  return rec.retryInMs !== null && rec.retryInMs <= 0;
}

/** The delay before a quarantined stream's retry number `retries` (0 = the first): doubling, capped by the memory. */
export function retryDelay(s: Pick<StreamHealthSettings, "quarantineRetryMs" | "failureMemoryMs">, retries: number): number {
  return Math.min(s.quarantineRetryMs * 2 ** Math.min(retries, 30), s.failureMemoryMs);
}
