/**
 * Weighted rendezvous (highest random weight) hashing. PURE: no I/O, no Date, no
 * Math.random; the same inputs give the same owner on every agent and every run.
 *
 * Law (what makes it the right fallback): a stream's owner is the member with the
 * highest score  w / -ln(u(stream, member)),  u uniform in (0,1). Changing one member
 * (join, leave, weight change) moves only streams to or from that member, and each
 * member's expected share is w / Σw.
 *
 * The leader's assignor uses the same function for every free choice, so falling back
 * from the orchestrated assignment to pure hashing moves few streams.
 */

/** 32-bit FNV-1a over the UTF-16 code units of `s`, then avalanched. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** murmur3's finalizer: a bijection on 32-bit integers with good avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The pair hash u(stream, member) as an unsigned 32-bit integer. */
export function pairHash(streamHash: number, memberHash: number): number {
  return fmix32((streamHash ^ memberHash) >>> 0);
}

/** score = w / -ln(u), with u = (h + 0.5) / 2^32 so u is never 0 or 1. */
export function score(h: number, weight: number): number {
  return weight / -Math.log((h + 0.5) / 4294967296);
}

export interface HashMember {
  readonly id: string;
  /** Relative capacity; members with weight ≤ 0 never win. */
  readonly weight: number;
}

/**
 * A fixed set of members, prepared for many lookups. Members are kept sorted by id so
 * ties (equal weight and equal pair hash, about 1 in 2^32) break the same way everywhere.
 */
export class Rendezvous {
  readonly ids: readonly string[];
  readonly weights: Float64Array;
  private readonly memberHashes: Int32Array;
  /** Members grouped by equal weight: within a group the highest pair hash wins, no log needed. */
  private readonly groups: { weight: number; members: Int32Array }[];

  constructor(members: readonly HashMember[]) {
    const sorted = [...new Map(members.filter((m) => m.weight > 0).map((m) => [m.id, m])).values()].sort((a, b) =>
      a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
    );
    this.ids = sorted.map((m) => m.id);
    this.weights = Float64Array.from(sorted.map((m) => m.weight));
    this.memberHashes = Int32Array.from(sorted.map((m) => fmix32(hashString(m.id) ^ 0x5bd1e995)));
    const byWeight = new Map<number, number[]>();
    sorted.forEach((m, i) => {
      const list = byWeight.get(m.weight) ?? [];
      list.push(i);
      byWeight.set(m.weight, list);
    });
    this.groups = [...byWeight.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([weight, idx]) => ({ weight, members: Int32Array.from(idx) }));
  }

  get size(): number {
    return this.ids.length;
  }

  /** Index (into `ids`) of the winning member for a stream hash, or -1 with no members. */
  ownerIndex(streamHash: number): number {
    let best = -1;
    let bestScore = -Infinity;
    for (const g of this.groups) {
      const ms = g.members;
      // Highest pair hash within the group; on equal hashes the lower index (id) wins.
      let gi = ms[0]!;
      let gh = pairHash(streamHash, this.memberHashes[gi]!);
      for (let k = 1; k < ms.length; k++) {
        const i = ms[k]!;
        const h = pairHash(streamHash, this.memberHashes[i]!);
        if (h > gh) {
          gh = h;
          gi = i;
        }
      }
      const s = score(gh, g.weight);
      if (s > bestScore || (s === bestScore && gi < best)) {
        bestScore = s;
        best = gi;
      }
    }
    return best;
  }

  /** The winning member id for a stream key, or undefined with no members. */
  owner(streamKey: string): string | undefined {
    const i = this.ownerIndex(hashString(streamKey));
    return i < 0 ? undefined : this.ids[i];
  }

  /** The score of member `index` for a stream hash (higher = more preferred). */
  scoreOf(streamHash: number, index: number): number {
    return score(pairHash(streamHash, this.memberHashes[index]!), this.weights[index]!);
  }

  /**
   * The best member among those `allowed` (by index). Used by the assignor for free
   * choices when the first choice is full. Returns -1 when nothing is allowed.
   */
  bestAllowed(streamHash: number, allowed: (index: number) => boolean): number {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i < this.ids.length; i++) {
      if (!allowed(i)) continue;
      const s = this.scoreOf(streamHash, i);
      if (s > bestScore) {
        bestScore = s;
        best = i;
      }
    }
    return best;
  }
}
