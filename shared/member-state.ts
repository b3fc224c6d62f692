/**
 * One vocabulary for a member's state, shared by the leader's plan, the hashing agents and
 * the operator's views, so that they never disagree on who counts:
 * - LIVE: a heartbeat was seen and the tracker has not watched the member silent for
 *   HEARTBEAT_TIMEOUT, nor seen it leave (status alive or warning). Only live members hold
 *   streams, block others from them, weigh in the hash, or count as migrated sidecars.
 * - the hashing weight, what live members report holding, and the state an operator sees
 *   (`instanceState`) are all derived from that one test.
 * PURE: no I/O.
 */
import type { MemberView, Snapshot } from "./membership.js";
import type { Heartbeat, InstanceStatus, StreamId } from "./types.js";

export type LiveMember = MemberView & { readonly hb: Heartbeat };

export function isLive(m: MemberView | undefined): m is LiveMember {
  return !!m && !!m.hb && (m.status === "alive" || m.status === "warning");
}

/** Ids of the live members. */
export function liveIds(members: Iterable<MemberView>): Set<string> {
  const out = new Set<string>();
  for (const m of members) if (isLive(m)) out.add(m.id);
  return out;
}

/**
 * The hashing weight of a member: its capacity while it is live, not draining and not
 * leaving (and, with REQUIRE_WORKER, while its worker is alive: a dead fingerv7 beside a
 * live agent gets no share); 0 otherwise. Agents and the leader both use this, so they
 * compute the same owners for the same snapshot.
 */
export function hashWeight(m: MemberView, requireWorker = false): number {
  if (!isLive(m) || m.hb.draining || m.hb.leaving) return 0;
  if (requireWorker && !m.hb.worker.ok) return 0;
  return Math.max(0, m.hb.capacity);
}

/**
 * How many streams the leader may place on a live member: its capacity, or 0 when its
 * worker is down (with REQUIRE_WORKER). (A member cut from PostgreSQL is left out of the
 * placement altogether: shared/placement/plan.ts.)
 */
export function placementCapacity(m: LiveMember, requireWorker: boolean): number {
  if (requireWorker && !m.hb.worker.ok) return 0;
  return Math.max(0, m.hb.capacity);
}

/** Streams that live members (other than `except`) report holding. */
export function heldByOthers(snap: Snapshot, except: string): Map<StreamId, string> {
  const out = new Map<StreamId, string>();
  for (const m of snap.members.values()) {
    if (m.id === except || !isLive(m)) continue;
    for (const s of m.hb.held) out.set(s, m.id);
  }
  return out;
}

/** What an instance row says, as far as its state goes. */
export interface InstanceRowState {
  readonly status: string;
  readonly draining: boolean;
  readonly removedAt?: string | null;
}

/**
 * The state of an instance: what the leader records in `instances.status` and what
 * /instances and the dashboard show, by one rule set.
 * - From the tracker's status: alive → active, warning → warning, left → removed,
 *   dead → inactive. A member tracked without any heartbeat seen (the owner of rows,
 *   watched since this tracker started) is not live: inactive.
 * - A live member draining (by its heartbeat, its shutdown, or the operator's flag on its
 *   row) → draining.
 * - A live member whose row says it was gone (inactive, removed) → recovering: it is back.
 * - A member recorded as recovering, and otherwise active, stays recovering until it
 *   serves (`serving`: it may be given streams, or serves by hashing). The leader knows
 *   that and clears it; a view that does not know (undefined) shows what was recorded.
 * - No member tracked at all: removed if its row says so (or there is none), else inactive.
 */
export function instanceState(m: MemberView | undefined, row: InstanceRowState | undefined, serving?: boolean): InstanceStatus {
  if (!m) return !row || row.removedAt || row.status === "removed" ? "removed" : "inactive";
  let st: InstanceStatus = !m.hb ? "inactive" : m.status === "alive" ? "active" : m.status === "warning" ? "warning" : m.status === "left" ? "removed" : "inactive";
  if (isLive(m) && (m.hb.draining || m.hb.leaving || row?.draining)) st = "draining";
  if (isLive(m) && row && (row.status === "inactive" || row.status === "removed")) st = "recovering";
  if (row?.status === "recovering" && st === "active" && serving !== true) st = "recovering";
  return st;
}
