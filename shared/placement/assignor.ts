/**
 * The assignor: which member serves which stream. PURE (no I/O, no clock, no randomness,
 * deterministic), so the leader, the tests and the benchmark all run the same code.
 *
 * Laws (each has a property test in test/unit/assignor.property.test.ts):
 * - Complete: every stream is placed while total capacity allows; what cannot be placed
 *   is returned in `unassigned`, never dropped silently, and is placed as soon as room
 *   appears.
 * - Proportional: member i's target is its exact share N·cap_i/Σcap rounded down or up
 *   (Σ targets = min(N, Σcap), never above cap_i). The units left after rounding down go
 *   first to members that already hold more than their rounded-down share, so no stream
 *   moves for the sake of rounding; then by largest remainder, then by id. After a
 *   rebalance every member is exactly at its target.
 * - Sticky: a stream moves only when its owner is gone, draining or over capacity, when
 *   its owner is over target during a permitted rebalance, when it left the catalog, or
 *   when its owner's worker gave it up (`refused`; never placed back on that member), or
 *   when a constraint evicts it (`constraints`: labels, a failing or degraded worker).
 * - Constrained: a stream with a constraint is never left on a member it does not allow
 *   (property-tested); a stream allowed where it is and not otherwise moving stays.
 *   So a join moves only what the newcomer gets, a leave only the leaver's streams,
 *   catalog growth no old stream, and a capacity change only the excess: in each case
 *   the fewest moves that end within the targets. (Rarely, when a large member's share
 *   crosses an integer before a small member's remainder does, no balanced placement
 *   keeps every old stream; then one more unit moves, still the fewest possible.)
 * - Hash-shaped: every free choice goes to the member weighted rendezvous hashing
 *   (./hash.ts) prefers among those with room; a member
 *   with more first-choice streams than room keeps those it prefers most; a member that
 *   must shed gives up first the streams whose hashing owner has room for them, then its
 *   weakest (mostly streams hashing gives to someone else). Rounding units go to members
 *   hashing favours (see quotaTargets in ./targets.ts), which makes a placement from scratch differ from
 *   pure hashing on the fewest streams any balanced placement can.
 * - Calm: members that are alive and not draining are rebalanced only when the caller
 *   allows it (cooldown, or a member joined or changed capacity) AND, once free streams
 *   are placed, the imbalance exceeds the threshold or a member is more than
 *   MAX_STREAM_DIFFERENCE streams from its target (or the operator forces it). Failover,
 *   drains, over-capacity and new streams never wait for that. A settled assignment is a
 *   fixed point: computing again moves nothing.
 *
 * Does not guarantee: anything about WHEN a stream may move (handoffs, holders, leases are
 * ./plan.ts's business), nor about hashed or legacy members (the caller leaves their
 * streams out of `streams`; hashed mode runs this same function over the live view:
 * ./hash-owners.ts). It reads no clock and keeps no state between calls.
 *
 * The result does not depend on the order of `streams` (only the order of `moves` does).
 * Cost: a rendezvous scan (O(members), batched through the hash's SIMD kernel) for each
 * stream that must be placed, and for the few streams a shedding member might give to a
 * member with room; O(streams) array work for everything else (./assign-core.ts, which
 * places streams given by position; `assign` is that over a map of current owners, plus
 * the map of the result and the streams that left).
 */
import type { MoveReason, StreamId } from "../types.js";
import type { Imbalance } from "./targets.js";
import type { StreamConstraint } from "./relocate.js";
import { seat } from "./assign-core.js";

export type { StreamConstraint } from "./relocate.js";

export interface AssignMember {
  readonly id: string;
  readonly capacity: number;
  /** Draining members keep nothing and receive nothing. */
  readonly draining: boolean;
}

export interface AssignPolicy {
  readonly imbalanceThreshold: number;
  readonly maxStreamDifference: number;
  /** False while the rebalance cooldown runs; failover, drains and new streams ignore it. */
  readonly rebalanceAllowed: boolean;
  /** Rebalance to the targets whatever the imbalance (an operator's POST /rebalance). */
  readonly force?: boolean;
  /** Why a rebalance would happen now, for the moves' reasons (default "imbalance"). */
  readonly rebalanceReason?: MoveReason;
}

export interface AssignInput {
  /** Streams to place (active catalog, minus what hashed or legacy members own). */
  readonly streams: readonly StreamId[];
  /** Members that may hold streams: alive, orchestrated. */
  readonly members: readonly AssignMember[];
  /** Current owner of each stream (any id; owners not in `members` lose their streams). */
  readonly current: ReadonlyMap<StreamId, string>;
  /** Owners known to have died (their streams move with reason "failover"). */
  readonly dead?: ReadonlySet<string>;
  /** Owners serving in hashed mode (their streams move with reason "hashed"). */
  readonly hashed?: ReadonlySet<string>;
  /**
   * The leader's rows. Only rows in handoff (`revoking`) of streams absent from `current`
   * are read: such a stream's handoff has completed, and its placement is reported as a
   * move from the row's owner with the row's reason (e.g. "drain"), not as a new stream.
   */
  readonly previous?: ReadonlyMap<StreamId, { readonly owner: string; readonly reason: MoveReason; readonly state: string }>;
  /**
   * Streams a worker gave up, each with the member that gave it up (POST /streams/release).
   * Such a stream is free (a move with reason "released") and is never placed on that
   * member: where placement puts it there, it goes to the usable member with the most room
   * (capacity − load, then the lower id) or, with no room anywhere, stays unassigned.
   */
  readonly refused?: ReadonlyMap<StreamId, string>;
  /**
   * Where some streams may go (labels, failure memory, degraded workers: ./health-rules.ts).
   * A constrained stream is never left on a member it does not allow: placement puts it
   * where it would go anyway if that is allowed, else on the allowed member with the
   * lowest `rank`, then the most room to its target, then to its capacity (then the lower
   * id); with no room anywhere it stays unassigned. `evict`: its current owner, if not
   * allowed, gives it up with `reason`.
   */
  readonly constraints?: ReadonlyMap<StreamId, StreamConstraint>;
  readonly policy: AssignPolicy;
  /** The caller vouches that `streams` lists no id twice (no set of them is built then). */
  readonly distinct?: boolean;
}


export interface Move {
  readonly stream: StreamId;
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: MoveReason;
}

export interface AssignResult {
  /** The new owner of every placed stream. */
  readonly assignment: Map<StreamId, string>;
  /** One per stream that changes owner, in the order of `streams`, then streams that left. */
  readonly moves: Move[];
  /** Streams that could not be placed (total capacity too small). */
  readonly unassigned: StreamId[];
  readonly targets: Map<string, number>;
  /** Whether members were rebalanced towards their targets (moves with the rebalance reason). */
  readonly rebalanced: boolean;
  /** Imbalance among eligible members once free streams are placed, before any rebalance. */
  readonly imbalanceBefore: Imbalance;
  /** Imbalance of the result. */
  readonly imbalanceAfter: Imbalance;
}

export function assign(input: AssignInput): AssignResult {
  const streamSet = input.distinct === true ? undefined : new Set(input.streams);
  const ids = streamSet === undefined || streamSet.size === input.streams.length ? input.streams : [...streamSet];
  let known = 0; // streams found in `current`: if all its keys are, no stream left the catalog
  const cur = ids.map((id) => {
    const o = input.current.get(id);
    if (o !== undefined) known++;
    return o;
  });
  const r = seat({ ...input, ids, cur });
  const assignment = new Map<StreamId, string>();
  for (let k = 0; k < ids.length; k++) if (r.owner[k]! >= 0) assignment.set(ids[k]!, r.memberIds[r.owner[k]!]!);
  const moves = r.moves;
  if (known < input.current.size) {
    const listed = streamSet ?? new Set(ids);
    for (const [id, o] of input.current) if (!listed.has(id)) moves.push({ stream: id, from: o, to: null, reason: "catalog" });
  }
  const { owner: _o, memberIds: _m, ...rest } = r;
  return { ...rest, assignment, moves };
}
