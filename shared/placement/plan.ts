/**
 * From the cluster's state to the row changes of one leader tick. PURE.
 *
 * The handoff is break-before-make, driven by what members report holding:
 * - a stream whose owner is alive moves by first marking its row `revoking`; the owner
 *   stops offering it; the revocation completes when the owner's heartbeat shows a
 *   version ≥ the revoke's version and no longer lists the stream as held;
 * - a stream whose owner is dead (watched silent for HEARTBEAT_TIMEOUT) or left with
 *   nothing held moves at once;
 * - a stream is never given to a member while any other live member reports holding it.
 *
 * Guarantees: those rules for any input (test/unit/plan.property.test.ts), and placement
 * by ./assignor.ts's laws for the streams that are free to move, within the constraints
 * of ./health-rules.ts (labels, failing streams, quarantine, degraded members).
 * Does not guarantee: that the ops land (the fenced writer checks the epoch), nor safety
 * against members that under-report what they hold: `held` is trusted as reported.
 *
 * Cost: streams are handled by catalog position, in arrays (./catalog-index.ts), not in
 * maps keyed by stream; what derives from the catalog, from each member's held list and
 * from the rows (with `rowsJournal`) is kept across calls and updated from what changed
 * (./holders.ts, ./rows-index.ts), and the result is what a fresh computation gives
 * (test/unit/plan-incremental.test.ts). What remains is a few passes over arrays of
 * every stream in the placement, the assignor's among them.
 */
import { hashingMembers, hashOwners } from "./hash-owners.js";
import { instanceState, isLive, placementCapacity } from "../member-state.js";
import type { MemberView } from "../membership.js";
import type { InstanceStatus, Mode, MoveReason, Stream, StreamId } from "../types.js";
import type { StreamHealthSettings } from "../config.js";
import type { HealthOp, HealthView } from "../stream-health-store.js";
import type { AssignMember, AssignPolicy, AssignResult } from "./assignor.js";
import { seat, seatMap } from "./assign-core.js";
import { healthRules } from "./health-rules.js";
import { catalogIndex, sameMetadata } from "./catalog-index.js";
import { holdersOf } from "./holders.js";
import { rowsByPosition, type RowsJournal } from "./rows-index.js";
import type { InstanceRow, Row, RowOp } from "./rows.js";

export type { InstanceRow, Row, RowOp } from "./rows.js";

export interface PlanInput {
  readonly epoch: number;
  readonly flag: Mode;
  readonly catalog: readonly Stream[];
  readonly rows: ReadonlyMap<StreamId, Row>;
  /**
   * What names the rows' content (leader/store.ts): lets plan keep what it derives from
   * the rows across calls and update it from the streams that changed (./rows-index.ts).
   * Absent: everything is derived again.
   */
  readonly rowsJournal?: RowsJournal;
  readonly instances: ReadonlyMap<string, InstanceRow>;
  /**
   * The membership view. A field that plan (or what it calls) reads must not be one of
   * those leader/memo.ts ignores as changing with every beat (VOLATILE_HEARTBEAT, …).
   */
  readonly members: ReadonlyMap<string, MemberView>;
  readonly policy: AssignPolicy;
  /** A member whose worker is not fetching cannot serve: treat it as unable to hold streams. */
  readonly requireWorker: boolean;
  /**
   * Give nothing to members cut from PostgreSQL (they could not read it). False right after
   * the leader's own PostgreSQL trouble: then every member's flag may still describe an
   * outage that just ended for all, and acting on them would move streams for nothing.
   */
  readonly honourPgCut?: boolean;
  /** The membership view has not changed for HASH_SETTLE (only matters with hashing members). */
  readonly hashSettled?: boolean;
  /** Streams owned by live legacy members (no sidecar): never given to anyone else. */
  readonly legacy?: ReadonlyMap<StreamId, string>;
  /**
   * The session (process) of each member whose rows this leader has written. A member
   * seen with another session (it restarted) gets its rows re-stamped: it trusts only
   * rows written after it started.
   */
  readonly stamped?: ReadonlyMap<string, string>;
  /** Stream health and its settings (./health-rules.ts); absent: placement ignores health. */
  readonly health?: {
    readonly view: HealthView | undefined;
    readonly settings: StreamHealthSettings;
    /** Failure-driven changes this tick may make (STREAM_FAILOVER_BUDGET's bucket). */
    readonly budget: number;
  };
}

export interface Plan {
  readonly ops: RowOp[];
  /** Members whose version must move (they get rows, lose rows, or must learn the epoch). */
  readonly bump: Set<string>;
  readonly result: AssignResult;
  /** Streams that cannot move yet because another member still holds them. */
  readonly waiting: StreamId[];
  /** Members served by hashing (their streams are theirs by the shared function, ./hash-owners.ts). */
  readonly hashedMembers: ReadonlySet<string>;
  readonly hashedOwned: number;
  /** Streams left to legacy members by the old static rule. */
  readonly legacyOwned: number;
  /** Members in the assignor's pool. */
  readonly pool: readonly AssignMember[];
  /** Members whose recorded state changes (see instanceState). */
  readonly statuses: Map<string, InstanceStatus>;
  /** Streams per owner as the assignor saw them before this step (for the log). */
  readonly loadBefore: Readonly<Record<string, number>>;
  /** Why each stream left without a member is unassigned (capacity, quarantined, no-matching-worker). */
  readonly unplaced: ReadonlyMap<StreamId, MoveReason>;
  /** Health changes the leader writes with this plan (charged failures, quarantines). */
  readonly healthOps: readonly HealthOp[];
  /** Failure-driven changes spent from the budget. */
  readonly healthSpent: number;
  /** Members treated as degraded. */
  readonly degraded: ReadonlySet<string>;
}

/** Health settings when the input carries none: they are never consulted then (no view, no budget). */
const NO_HEALTH: StreamHealthSettings = { failoverAfterMs: Infinity, failureMemoryMs: 0, quarantineAfter: Infinity, quarantineRetryMs: 0, failoverBudgetPerMinute: 0 };

export function plan(input: PlanInput): Plan {
  const { members, rows } = input;
  const ix = catalogIndex(input.catalog);
  const { ids, pos } = ix;
  const N = ids.length;

  // 1. Who is who.
  const hashedMembers = new Set<string>();
  const pool: AssignMember[] = [];
  const usable = new Set<string>();
  // Members cut from PostgreSQL cannot read rows: they keep what they hold, untouched (no
  // revoke they could not see), get nothing new, and the rest is placed among the others.
  const frozen = new Map<StreamId, string>();
  for (const m of members.values()) {
    if (!isLive(m)) continue;
    const pinnedHashed = input.flag === "hashed" || m.hb.useOrchestrator === false;
    if (pinnedHashed) {
      hashedMembers.add(m.id);
      continue;
    }
    if (input.honourPgCut !== false && m.hb.pgCut === true) {
      for (const s of m.hb.held) frozen.set(s, m.id);
      continue;
    }
    const draining = m.hb.draining || m.hb.leaving || input.instances.get(m.id)?.draining === true;
    const capacity = placementCapacity(m, input.requireWorker);
    pool.push({ id: m.id, capacity, draining });
    if (!draining && capacity > 0) usable.add(m.id);
  }

  // 2. What hashing members own: the same function, inputs and view the agents use
  //    (the catalog without legacy streams, the live members, what they hold).
  const legacy = input.legacy ?? new Map<StreamId, string>();
  const hashedOwned = new Set<StreamId>();
  if (hashedMembers.size > 0) {
    const hashable = legacy.size > 0 ? input.catalog.filter((s) => !legacy.has(s.id)) : input.catalog;
    const { imbalanceThreshold, maxStreamDifference } = input.policy;
    for (const [s, o] of hashOwners(hashable, hashingMembers(members.values(), input.requireWorker), { imbalanceThreshold, maxStreamDifference })) {
      if (hashedMembers.has(o)) hashedOwned.add(s);
    }
  }
  // Streams are handled by catalog position (./catalog-index.ts); `slot[k]` is position
  // k's place among the streams in the placement (−1: out of it), unless all are in it.
  const outside = (id: StreamId) => hashedOwned.has(id) || legacy.has(id) || frozen.has(id);
  const allIn = hashedOwned.size === 0 && legacy.size === 0 && frozen.size === 0;
  const inPlacement = allIn ? input.catalog : input.catalog.filter((s) => !outside(s.id));
  let slots = allIn ? undefined : positionsWhere(N, (k) => !outside(ids[k]!));

  // 3. Who holds what right now (live members only: a dead member's lease has run out).
  const live = [...members.values()].filter(isLive);
  const holders = holdersOf(live, ix);
  const at = (id: StreamId, k: number) => (k >= 0 && ids[k] === id ? k : pos.get(id) ?? -1);
  const heldByOther = (s: StreamId, k: number, me: string | undefined): boolean => {
    if (legacy.has(s)) return true;
    const all = holders.all(s);
    if (all) return all.some((h) => h !== me);
    const h = holders.first(at(s, k), s);
    return h !== undefined && h !== me;
  };
  const revocationDone = (r: Row, k: number): boolean => {
    const m = members.get(r.owner);
    if (!isLive(m)) return true; // dead, or left holding nothing
    if (holders.all(r.stream)?.includes(r.owner) ?? holders.first(at(r.stream, k), r.stream) === r.owner) return false;
    return r.revokeVersion === null || m.hb.version >= r.revokeVersion || hashedMembers.has(r.owner);
  };
  // The rows by catalog position, and those of streams no longer in the catalog (sorted).
  const { rowAt, gone } = rowsByPosition(rows, ix, input.rowsJournal);

  // 4. The assignor's view of current ownership (by position; streams in the placement only).
  const cur = new Array<string | undefined>(N);
  const dead = new Set<string>();
  const inPool = new Set(pool.map((m) => m.id));
  const eachSlot = (f: (k: number) => void) => {
    if (slots === undefined) for (let k = 0; k < N; k++) f(k);
    else for (let x = 0; x < slots.length; x++) f(slots[x]!);
  };
  eachSlot((k) => {
    const row = rowAt[k];
    if (row?.state === "revoking" && !revocationDone(row, k)) {
      if (row.next !== null) cur[k] = row.next;
      return;
    }
    const only = holders.shared && holders.all(ids[k]!) ? undefined : holders.first(k, ids[k]!);
    if (only !== undefined && inPool.has(only)) {
      cur[k] = only; // adopt what a member physically holds (e.g. after hashing)
    } else if (row?.state === "active") {
      cur[k] = row.owner;
      if (!isLive(members.get(row.owner))) dead.add(row.owner);
    }
  });
  // 4b. Health and labels (./health-rules.ts): constraints, streams out of the placement,
  //     degraded members (they keep only what they do not lose this tick, and get nothing new).
  const health = healthRules({
    view: input.health?.view,
    settings: input.health?.settings ?? NO_HEALTH,
    budget: input.health?.budget ?? 0,
    usable: pool.filter((m) => usable.has(m.id)).map((m) => ({ id: m.id, labels: members.get(m.id)?.hb?.labels, degraded: input.health ? members.get(m.id)?.hb?.degraded : undefined })),
    streams: inPlacement,
    owners: { get: (id) => { const k = pos.get(id); return k === undefined ? undefined : cur[k]; } },
  });
  if (health.out.size > 0) {
    for (const s of health.out.keys()) cur[pos.get(s)!] = undefined;
    const base = slots;
    slots = positionsWhere(N, (k) => (base === undefined || !outside(ids[k]!)) && !health.out.has(ids[k]!));
  }
  if (health.degraded.size > 0) {
    const owned = new Map<string, number>();
    eachSlot((k) => {
      const o = cur[k];
      if (o !== undefined) owned.set(o, (owned.get(o) ?? 0) + 1);
    });
    for (let x = 0; x < pool.length; x++) {
      const m = pool[x]!;
      if (health.degraded.has(m.id)) pool[x] = { ...m, capacity: Math.max(0, Math.min(m.capacity, (owned.get(m.id) ?? 0) - (health.evicted.get(m.id) ?? 0))) };
    }
  }

  // Streams a worker gave up (POST /streams/release) are free, and not given back to it.
  // Should two members list one stream, the one it is with now is the one it leaves.
  const refused = new Map<StreamId, string>();
  for (const m of members.values()) {
    if (!isLive(m)) continue;
    for (const s of m.hb.released ?? []) {
      const k = pos.get(s);
      const now = k === undefined ? undefined : cur[k]; // set for streams in the placement only
      if (refused.get(s) === undefined || now !== refused.get(s)) refused.set(s, m.id);
    }
  }
  const poolIds = slots === undefined ? ids : Array.from(slots, (k) => ids[k]!);
  const seated = seat({
    ids: poolIds,
    cur: slots === undefined ? cur : Array.from(slots, (k) => cur[k]),
    hashes: slots === undefined ? ix.hashes() : Float64Array.from(slots, (k) => ix.hashes()[k]!),
    members: pool,
    dead,
    hashed: hashedMembers,
    previous: rows,
    refused,
    constraints: health.constraints,
    policy: input.policy,
  });
  const { owner: _owner, memberIds, ...rest } = seated;
  const result: AssignResult = { ...rest, assignment: seatMap(poolIds, seated) };
  const slotOf = slots === undefined ? undefined : new Int32Array(N).fill(-1);
  if (slotOf && slots) for (let x = 0; x < slots.length; x++) slotOf[slots[x]!] = x;
  const targetAt = (k: number): string | undefined => {
    const x = k < 0 ? -1 : slotOf === undefined ? k : slotOf[k]!;
    const o = x < 0 ? -1 : seated.owner[x]!;
    return o < 0 ? undefined : memberIds[o];
  };
  const reasons = new Map<StreamId, MoveReason>(result.moves.map((m) => [m.stream, m.reason]));

  // 5. The difference, as row operations, in stream id order.
  const ops: RowOp[] = [];
  const bump = new Set<string>();
  const waiting: StreamId[] = [];
  const put = (s: Stream, to: string, reason: MoveReason, from: string | null) => {
    ops.push({ op: "put", row: { stream: s.id, owner: to, state: "active", next: null, revokeVersion: null, reason, url: s.url, name: s.name, metadata: s.metadata }, bump: to, reason, from });
    bump.add(to);
  };
  // A stream goes to a new owner only when nobody else holds it and, with hashing members
  // in the cluster, only once the membership view has settled (HASH_SETTLE): while views
  // differ a hashing agent may take the same free stream by its own reading of the view.
  const reasonOf = (id: StreamId): MoveReason => health.out.get(id) ?? reasons.get(id) ?? (legacy.has(id) ? "legacy" : hashedOwned.has(id) ? "hashed" : "catalog");
  const mayGive = (s: StreamId, k: number, to: string) => !heldByOther(s, k, to) && (hashedMembers.size === 0 || input.hashSettled !== false);
  const step = (id: StreamId, k: number): void => {
    const target = targetAt(k);
    const row = k >= 0 ? rowAt[k] : rows.get(id);
    const stream = k >= 0 ? ix.streams[k] : undefined;
    if (frozen.size > 0 && frozen.has(id)) return; // its holder cannot read PostgreSQL: leave its row as it is
    if (!row) {
      if (target === undefined || !stream) return;
      if (!mayGive(id, k, target)) waiting.push(id);
      else put(stream, target, reasonOf(id), null);
      return;
    }
    if (hashedMembers.has(row.owner)) {
      // Hashing members serve by hashed ownership, not by rows: drop the row. What they
      // physically hold still blocks anyone else (heldByOther) until they release it.
      ops.push({ op: "delete", stream: id, owner: row.owner, reason: "hashed" });
      bump.add(row.owner);
      return;
    }
    if (row.state === "active") {
      if (target === row.owner) {
        if (stream && (stream.url !== row.url || stream.name !== row.name || !sameMetadata(stream.metadata, row.metadata))) {
          put(stream, row.owner, "catalog", row.owner);
        }
        return;
      }
      if (isLive(members.get(row.owner))) {
        ops.push({ op: "revoke", stream: id, owner: row.owner, next: target ?? null, reason: reasonOf(id) });
        bump.add(row.owner);
      } else if (target !== undefined && stream) {
        if (!mayGive(id, k, target)) waiting.push(id);
        else put(stream, target, reasons.get(id) ?? "failover", row.owner);
      } else {
        ops.push({ op: "delete", stream: id, owner: row.owner, reason: reasonOf(id) });
      }
      return;
    }
    // revoking
    if (revocationDone(row, k)) {
      if (target !== undefined && stream) {
        if (!mayGive(id, k, target)) waiting.push(id);
        else put(stream, target, row.reason, row.owner);
      } else {
        ops.push({ op: "delete", stream: id, owner: row.owner, reason: row.reason });
      }
    } else if (target === row.owner && stream && !heldByOther(id, k, row.owner)) {
      put(stream, row.owner, "handoff cancelled", row.owner); // the owner keeps it after all
    } else if ((target ?? null) !== row.next) {
      ops.push({ op: "retarget", stream: id, next: target ?? null });
    } else {
      waiting.push(id);
    }
  };
  // Every catalog stream with a row or in the placement, and the rows of streams that left
  // the catalog merged in, all in the default sort order.
  let g = 0;
  for (let r = 0; r < N; r++) {
    const k = ix.sorted[r]!;
    if (rowAt[k] === undefined && slotOf !== undefined && slotOf[k]! < 0) continue;
    const id = ids[k]!;
    while (g < gone.length && gone[g]! < id) step(gone[g]!, -1), g++;
    step(id, k);
  }
  while (g < gone.length) step(gone[g]!, -1), g++;

  // 6. Members that must learn this leader's epoch before they follow it.
  //    A member still serving by hashing (it fell back while there was no leader) is
  //    bumped every tick until it reports orchestrated: its rows now mirror what it holds
  //    (adoption above), so it can switch without a gap.
  for (const m of members.values()) {
    if (!isLive(m) || hashedMembers.has(m.id)) continue;
    const restamp = input.stamped !== undefined && input.stamped.get(m.id) !== m.hb.session;
    if ((input.instances.get(m.id)?.epoch ?? -1) !== input.epoch || m.hb.mode === "hashed" || restamp) bump.add(m.id);
  }

  // 7. State of every member, for /instances.
  const statuses = new Map<string, InstanceStatus>();
  for (const m of members.values()) {
    const inst = input.instances.get(m.id);
    const st = instanceState(m, inst, usable.has(m.id) || hashedMembers.has(m.id));
    if (!inst || inst.status !== st) statuses.set(m.id, st);
  }

  const loadBefore: Record<string, number> = {};
  eachSlot((k) => {
    const o = cur[k];
    if (o !== undefined) loadBefore[o] = (loadBefore[o] ?? 0) + 1;
  });
  const unplaced = new Map<StreamId, MoveReason>(result.unassigned.map((s) => [s, "capacity"]));
  for (const [s, why] of health.out) unplaced.set(s, why);
  return {
    ops,
    bump,
    result,
    waiting,
    hashedMembers,
    hashedOwned: hashedOwned.size,
    legacyOwned: legacy.size,
    pool,
    statuses,
    loadBefore,
    unplaced,
    healthOps: health.ops,
    healthSpent: health.spent,
    degraded: health.degraded,
  };
}

/** The positions 0..n−1 for which `keep` holds, ascending. */
function positionsWhere(n: number, keep: (k: number) => boolean): Int32Array {
  const out = new Int32Array(n);
  let c = 0;
  for (let k = 0; k < n; k++) if (keep(k)) out[c++] = k;
  return out.slice(0, c);
}
