/**
 * The assignor's last step (./assignor.ts): streams placed where they may not be go
 * elsewhere. PURE; works in place on the assignor's seat arrays.
 *
 * Guarantees: a refused stream never stays on the member that gave it up; a constrained
 * stream never stays on a member its constraint does not allow; nobody goes above its
 * capacity; what finds no room is returned (it stays unassigned). A stream allowed where
 * it is stays there unless it is moving anyway and a better-ranked member has room.
 * Cost: O(members) for each stream that must be relocated.
 */
import type { MoveReason, StreamId } from "../types.js";

export interface StreamConstraint {
  readonly allowed: (member: string) => boolean;
  /** Its current owner, if not allowed, gives it up with `reason`. */
  readonly evict: boolean;
  readonly reason: MoveReason;
  /** Lower first among allowed members (default 0 for all). */
  readonly rank?: (member: string) => number;
}

/** The assignor's seats: stream k sits on member owner[k] (−1: none). */
export interface Seats {
  readonly ids: readonly StreamId[];
  readonly memberIds: readonly string[];
  readonly owner: Int32Array;
  readonly load: Int32Array;
  readonly cap: Int32Array;
  readonly target: Int32Array;
  readonly moveReason: Int8Array;
  /** The previous owner of each stream that moves. */
  readonly from: Map<number, string | null>;
  readonly reasonCode: Readonly<Record<MoveReason, number>>;
}

function positions(s: Seats): Map<StreamId, number> {
  return new Map(s.ids.map((id, k) => [id, k]));
}

/**
 * Moves each refused stream that sits on the member that gave it up to the usable member
 * with the most room (capacity − load; equal room: the lower id, as memberIds is sorted),
 * in the order of `refused`. Returns the streams that found no room.
 */
export function honourRefusals(s: Seats, refused: ReadonlyMap<StreamId, string> | undefined): number[] {
  const left: number[] = [];
  if (!refused || refused.size === 0) return left;
  const position = positions(s);
  const idx = new Map(s.memberIds.map((id, i) => [id, i]));
  for (const [id, who] of refused) {
    const k = position.get(id);
    const i = idx.get(who);
    if (k === undefined || i === undefined || s.owner[k] !== i) continue;
    s.owner[k] = -1;
    s.load[i]!--;
    let best = -1;
    let bestRoom = 0;
    for (let j = 0; j < s.memberIds.length; j++) {
      const r = s.cap[j]! - s.load[j]!;
      if (j !== i && r > bestRoom) (best = j), (bestRoom = r);
    }
    if (best < 0) left.push(k);
    else {
      s.owner[k] = best;
      s.load[best]!++;
    }
  }
  return left;
}

/**
 * Moves each constrained stream placed on a member it does not allow to the allowed
 * member ranked first (rank, then room to target, then room to capacity, then id).
 * Returns the streams that found no room.
 */
export function honourConstraints(s: Seats, constraints: ReadonlyMap<StreamId, StreamConstraint> | undefined): number[] {
  const left: number[] = [];
  if (!constraints || constraints.size === 0) return left;
  const position = positions(s);
  const M = s.memberIds.length;
  for (const [id, c] of constraints) {
    const k = position.get(id);
    if (k === undefined) continue;
    const i = s.owner[k]!;
    if (i < 0) continue;
    // Allowed where it is: it stays, unless it is moving anyway and a better-ranked member has room.
    const allowedHere = c.allowed(s.memberIds[i]!);
    const here = allowedHere ? (c.rank?.(s.memberIds[i]!) ?? 0) : Infinity;
    if (allowedHere && (c.rank === undefined || s.moveReason[k] === -1 || here <= 0)) continue;
    s.owner[k] = -1;
    s.load[i]!--;
    let best = -1;
    let key: [number, number, number] = [0, 0, 0];
    for (let j = 0; j < M; j++) {
      const capRoom = s.cap[j]! - s.load[j]!;
      if (capRoom <= 0 || !c.allowed(s.memberIds[j]!)) continue;
      const cand: [number, number, number] = [-(c.rank?.(s.memberIds[j]!) ?? 0), s.target[j]! - s.load[j]!, capRoom];
      if (best < 0 || cand[0] > key[0] || (cand[0] === key[0] && (cand[1] > key[1] || (cand[1] === key[1] && cand[2] > key[2])))) (best = j), (key = cand);
    }
    if (allowedHere && (best < 0 || -key[0] >= here)) best = i;
    else if (s.moveReason[k] === -1) {
      s.moveReason[k] = s.reasonCode[c.reason];
      s.from.set(k, s.memberIds[i]!);
    }
    if (best < 0) left.push(k);
    else {
      s.owner[k] = best;
      s.load[best]!++;
    }
  }
  return left;
}
