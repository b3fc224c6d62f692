/**
 * Targets: how many streams each member should hold (`quotaTargets`, exact integer
 * apportionment), and how far an assignment is from them (`measureImbalance`). PURE.
 *
 * Guarantees: Σ targets = min(streams, Σ capacity), each target ⌊share⌋ or ⌈share⌉ of
 * share = streams·cap/Σcap and never above the capacity. Does not guarantee which member
 * gets a rounding unit beyond the documented tie-breaks, nor look at streams or hashing:
 * the hints carry what the assignor learned from them.
 */
import type { AssignMember } from "./assignor.js";
import { cmp } from "./order.js";

export interface Imbalance {
  /** max |load_i − target_i| / max(target_i, 1) */
  readonly ratio: number;
  /** max |load_i − target_i|, in streams */
  readonly streams: number;
}

/** Optional tie-breaks for the seats of `quotaTargets`; neither changes how many streams move. */
export interface SeatHints {
  /** Per member: free streams whose hashing owner it is. A member offered more of them
   *  than its rounded-down share leaves room for takes a seat before other receivers. */
  readonly wanted?: ArrayLike<number>;
  /** Per member: 1 if it holds a stream whose hashing owner has room. Among members
   *  above their rounded-down share these take a seat last, so they shed that stream. */
  readonly reluctant?: ArrayLike<number>;
}

/**
 * Targets for `n` streams over members with `caps` (0 = not eligible) currently holding
 * `loads`: each target is ⌊share⌋ or ⌈share⌉ of share = n·cap/Σcap, Σ = min(n, Σcap).
 * Integer arithmetic only, so the result is exact. The units left after rounding down
 * ("seats") go first to members holding more than ⌊share⌋ (each such seat saves a move),
 * then to members hashing would give more free streams than ⌊share⌋ leaves room for, then
 * by largest remainder; `order` breaks the last ties (pass positions in id order).
 */
export function quotaTargets(n: number, caps: ArrayLike<number>, loads: ArrayLike<number>, order: ArrayLike<number>, hints: SeatHints = {}): Int32Array {
  const m = caps.length;
  const t = new Int32Array(m);
  let total = 0;
  for (let i = 0; i < m; i++) total += caps[i]!;
  if (total <= 0 || n <= 0) return t;
  if (n >= total) {
    for (let i = 0; i < m; i++) t[i] = caps[i]!;
    return t;
  }
  const rem = new Float64Array(m);
  const tier = new Int8Array(m);
  let given = 0;
  const open: number[] = [];
  for (let i = 0; i < m; i++) {
    const c = caps[i]!;
    if (c <= 0) continue;
    let q = Math.floor((n * c) / total);
    let r = n * c - q * total; // exact: n·c < 2^53
    if (r < 0) (q--, (r += total));
    else if (r >= total) (q++, (r -= total));
    t[i] = q;
    rem[i] = r;
    given += q;
    if (r === 0) continue;
    open.push(i);
    if (loads[i]! > q) tier[i] = hints.reluctant?.[i] ? 1 : 0;
    else tier[i] = (hints.wanted?.[i] ?? 0) > q - loads[i]! ? 2 : 3;
  }
  open.sort((a, b) => tier[a]! - tier[b]! || rem[b]! - rem[a]! || order[a]! - order[b]!);
  for (let k = 0; given < n && k < open.length; k++, given++) t[open[k]!]!++;
  return t;
}

/** Targets as a map over `members` (draining or capacity-0 members get 0). */
export function computeTargets(n: number, members: readonly AssignMember[], load: ReadonlyMap<string, number>): Map<string, number> {
  const order = rankById(members.map((m) => m.id));
  const caps = members.map((m) => (m.draining ? 0 : Math.max(0, Math.floor(m.capacity))));
  const loads = members.map((m) => load.get(m.id) ?? 0);
  const t = quotaTargets(n, caps, loads, order);
  return new Map(members.map((m, i) => [m.id, t[i]!]));
}

export function measureImbalance(members: readonly AssignMember[], load: ReadonlyMap<string, number>, targets: ReadonlyMap<string, number>): Imbalance {
  let ratio = 0;
  let streams = 0;
  for (const m of members) {
    if (m.draining || m.capacity <= 0) continue;
    const t = targets.get(m.id) ?? 0;
    const d = Math.abs((load.get(m.id) ?? 0) - t);
    streams = Math.max(streams, d);
    ratio = Math.max(ratio, d / Math.max(t, 1));
  }
  return { ratio, streams };
}

/** Position of each id in sorted order. */
function rankById(idList: readonly string[]): Int32Array {
  const pos = idList.map((_, i) => i).sort((a, b) => cmp(idList[a]!, idList[b]!));
  const rank = new Int32Array(idList.length);
  pos.forEach((p, r) => (rank[p] = r));
  return rank;
}
