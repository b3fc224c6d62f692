/**
 * The placement strategies the benchmark compares, all on the same inputs:
 * - assignor:   this project's assignor (shared/placement/assignor.ts), as the leader calls it;
 * - mod-n:      legacy fingerv7 distribution, int(index) % TOTAL_SERVERS (capacity ignored);
 * - int-split:  the source documents' proportional split with int() truncation: each
 *               member takes the next int(N·cap/Σcap) streams in id order, remainders
 *               stay unassigned, recomputed from scratch every time;
 * - ring:       a plain consistent-hash ring, 100 virtual nodes per average member
 *               (proportional to capacity), no load bound;
 * - greedy:     lock-per-stream (the deployed orchestrator branch: FOR UPDATE SKIP
 *               LOCKED): a stream stays with its owner while the owner lives; members poll
 *               in turn and each takes free streams up to its capacity. Generous to it:
 *               a dead owner's locks are taken to expire at once.
 */
import { assign, type AssignPolicy } from "../shared/placement/assignor.js";
import type { MoveReason } from "../shared/types.js";
import { hashString } from "../shared/placement/hash.js";

export interface BenchMember {
  readonly id: string;
  readonly capacity: number;
}

export interface PlaceInput {
  readonly streams: readonly string[];
  readonly members: readonly BenchMember[];
  /** The assignment before this step; null for a placement from scratch. */
  readonly previous: ReadonlyMap<string, string> | null;
  /** Members that were in `previous` and are gone now. */
  readonly dead: ReadonlySet<string>;
  /** Why the step happens (the leader's reason for a rebalance). */
  readonly reason: MoveReason;
}

export interface Strategy {
  readonly name: string;
  readonly description: string;
  place(input: PlaceInput): Map<string, string>;
}

/** The leader's defaults: IMBALANCE_THRESHOLD 0.15, MAX_STREAM_DIFFERENCE 3, cooldown passed. */
export const LEADER_POLICY: AssignPolicy = { imbalanceThreshold: 0.15, maxStreamDifference: 3, rebalanceAllowed: true };

export const assignor: Strategy = {
  name: "assignor",
  description: "this project: sticky quota targets, weighted-rendezvous-shaped, calm",
  place: ({ streams, members, previous, dead, reason }) =>
    assign({
      streams,
      members: members.map((m) => ({ id: m.id, capacity: m.capacity, draining: false })),
      current: previous ?? new Map(),
      dead,
      policy: { ...LEADER_POLICY, rebalanceReason: reason },
    }).assignment,
};

const byId = (members: readonly BenchMember[]) => [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
const streamNumber = (id: string) => (/^\d+$/.test(id) ? Number(id) : hashString(id));

export const modN: Strategy = {
  name: "mod-n",
  description: "legacy int(index) % TOTAL_SERVERS",
  place: ({ streams, members }) => {
    const ms = byId(members);
    const out = new Map<string, string>();
    if (ms.length === 0) return out;
    for (const s of streams) out.set(s, ms[streamNumber(s) % ms.length]!.id);
    return out;
  },
};

export const intSplit: Strategy = {
  name: "int-split",
  description: "documents' proportional split, int() truncation",
  place: ({ streams, members }) => {
    const ms = byId(members);
    const total = ms.reduce((s, m) => s + m.capacity, 0);
    const sorted = [...streams].sort((a, b) => streamNumber(a) - streamNumber(b) || (a < b ? -1 : 1));
    const out = new Map<string, string>();
    let next = 0;
    for (const m of ms) {
      const share = Math.min(m.capacity, Math.trunc((sorted.length * m.capacity) / total));
      for (let k = 0; k < share && next < sorted.length; k++) out.set(sorted[next++]!, m.id);
    }
    return out;
  },
};

/** A ring is rebuilt per placement; the benchmark times that too. */
export const ring: Strategy = {
  name: "ring",
  description: "consistent-hash ring, 100 vnodes per average member",
  place: ({ streams, members }) => {
    const out = new Map<string, string>();
    if (members.length === 0) return out;
    const mean = members.reduce((s, m) => s + m.capacity, 0) / members.length;
    const points: { at: number; id: string }[] = [];
    for (const m of members) {
      const v = Math.max(1, Math.round((100 * m.capacity) / mean));
      for (let i = 0; i < v; i++) points.push({ at: hashString(`${m.id}#${i}`), id: m.id });
    }
    points.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
    const at = Float64Array.from(points, (p) => p.at);
    for (const s of streams) {
      const h = hashString(s);
      let lo = 0;
      let hi = at.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (at[mid]! < h) lo = mid + 1;
        else hi = mid;
      }
      out.set(s, points[lo === at.length ? 0 : lo]!.id);
    }
    return out;
  },
};

export const greedy: Strategy = {
  name: "greedy",
  description: "lock per stream, members take free streams up to capacity",
  place: ({ streams, members, previous }) => {
    const ms = byId(members);
    const live = new Set(ms.map((m) => m.id));
    const out = new Map<string, string>();
    const load = new Map<string, number>(ms.map((m) => [m.id, 0]));
    const free: string[] = [];
    for (const s of [...streams].sort((a, b) => streamNumber(a) - streamNumber(b) || (a < b ? -1 : 1))) {
      const o = previous?.get(s);
      if (o !== undefined && live.has(o)) {
        out.set(s, o);
        load.set(o, load.get(o)! + 1);
      } else free.push(s);
    }
    let next = 0;
    for (const m of ms) {
      let room = m.capacity - load.get(m.id)!;
      while (room-- > 0 && next < free.length) out.set(free[next++]!, m.id);
    }
    return out;
  },
};

export const STRATEGIES: readonly Strategy[] = [assignor, modN, intSplit, ring, greedy];
