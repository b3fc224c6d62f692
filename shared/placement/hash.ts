/**
 * Weighted rendezvous (highest random weight) hashing. PURE: no I/O, no Date, no
 * Math.random; the same inputs give the same owner on every agent and every run.
 *
 * Definition. For a stream hash s and a member m with weight w > 0:
 *   h(s, m)     = fmix32(s XOR memberHash(m))                (a 32-bit pair hash)
 *   score(s, m) = w / -ln((h + 0.5) / 2^32)
 * The owner of s is the member with the highest score; equal scores go to the higher
 * pair hash, then to the lower index (members sorted by id). This is the exponential
 * race: -ln(u)/w is Exp(w), so member m wins with probability w / Σw.
 *
 * Law (what makes it the right fallback): a member's score for a stream depends on that
 * stream and that member only, so adding, removing or re-weighting one member moves only
 * streams to or from that member, and every agent that sees the same members computes
 * the same owner.
 *
 * Speed (exact, never an approximation of the definition above):
 * - all weights equal: the score is monotone in h, so the owner is the highest h and no
 *   logarithm is taken;
 * - mixed weights: a member can only win where its score exceeds a cut S; for each
 *   member the largest h with score ≤ S is precomputed, so a scan compares integers and
 *   takes a logarithm only for the few members above the cut. With S chosen so that a
 *   handful pass on average, a scan costs about the same as in the equal-weight case. If
 *   nobody passes, a lower cut is tried, then every member.
 *
 * - many streams at once (`ownerIndexes`): a small WebAssembly SIMD kernel computes four
 *   pair hashes per instruction and reports, per stream, the members above the first cut;
 *   the owner is then chosen among those in JavaScript with the same comparison. Where
 *   WebAssembly SIMD is missing, or a cut does not fit the kernel, the plain scan is used.
 *   Either way the answer is the definition's (the unit tests compare them).
 *
 * The leader's assignor uses the same function for every free choice, so falling back
 * from the orchestrated assignment to pure hashing moves few streams.
 *
 * Guarantees: the same owner for the same stream, members and weights on every agent and
 * every run; a membership change moves only streams to or from the changed member.
 * Does not guarantee: exact shares (a member's share is w/Σw only in expectation; the
 * assignor computes exact targets), or owners that survive a change of this function
 * (every agent of a cluster must run the same one).
 */

import { KERNEL_PASSERS, scanKernel } from "./hash-kernel.js";

export { simdKernelAvailable } from "./hash-kernel.js";

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
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The pair hash h(stream, member) as an unsigned 32-bit integer. */
export function pairHash(streamHash: number, memberHash: number): number {
  return fmix32((streamHash ^ memberHash) >>> 0);
}

/** score = w / -ln(u), with u = (h + 0.5) / 2^32 so u is never 0 or 1. */
export function score(h: number, weight: number): number {
  return weight / -Math.log((h + 0.5) / 4294967296);
}

/**
 * Whether (h, w) scores strictly below (bh, bw) without computing either score: the score
 * grows with the weight and strictly with the pair hash (consecutive hashes change −ln(u)
 * by far more than a rounding step), so a lower hash with no higher weight cannot win or
 * tie. Saves most logarithms.
 */
function dominated(h: number, w: number, bh: number, bw: number): boolean {
  return h < bh && w <= bw;
}

export interface HashMember {
  readonly id: string;
  /** Relative capacity; members with weight ≤ 0 never win. */
  readonly weight: number;
}

/**
 * Cuts for mixed weights: at level k the cut is S = Σw / CUT_PASSERS[k], so on average
 * about CUT_PASSERS[k] members pass it (and P(nobody passes) ≈ e^-CUT_PASSERS[k]).
 */
const CUT_PASSERS = [6, 48] as const;
/** Streams per kernel call (bounds the kernel's memory to about 0.6 MB). */
const KERNEL_CHUNK = 8192;
const NONE = -1;

/**
 * A fixed set of members, prepared for many lookups. Members are kept sorted by id so
 * that indexes, and so ties, are the same everywhere.
 */
export class Rendezvous {
  readonly ids: readonly string[];
  readonly weights: Float64Array;
  private readonly memberHashes: Int32Array;
  private readonly uniform: boolean;
  /** Per cut level, per member: the largest pair hash whose score is ≤ the cut. */
  private readonly cuts: Float64Array[];
  /** The first cut (computed for equal weights too; see `passesCut`). */
  private readonly firstCut: Float64Array;
  /** The first cut as unsigned 32-bit values for the SIMD kernel; null when one does not fit. */
  private readonly kernelCut: Uint32Array | null;

  constructor(members: readonly HashMember[]) {
    const sorted = [...new Map(members.filter((m) => m.weight > 0 && Number.isFinite(m.weight)).map((m) => [m.id, m])).values()].sort((a, b) =>
      a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
    );
    this.ids = sorted.map((m) => m.id);
    this.weights = Float64Array.from(sorted.map((m) => m.weight));
    this.memberHashes = Int32Array.from(sorted.map((m) => fmix32(hashString(m.id) ^ 0x5bd1e995)));
    this.uniform = sorted.every((m) => m.weight === sorted[0]!.weight);
    const total = sorted.reduce((s, m) => s + m.weight, 0);
    this.firstCut = this.cutTable(total / CUT_PASSERS[0]);
    this.cuts = this.uniform ? [] : [this.firstCut, ...CUT_PASSERS.slice(1).map((c) => this.cutTable(total / c))];
    this.kernelCut = this.firstCut.every((c) => c >= 0) ? Uint32Array.from(this.firstCut) : null;
  }

  get size(): number {
    return this.ids.length;
  }

  /** The pair hash of stream hash `streamHash` and member `index`. */
  pairHashOf(streamHash: number, index: number): number {
    return pairHash(streamHash, this.memberHashes[index]!);
  }

  /** The score of member `index` for a stream hash (higher = more preferred). */
  scoreOf(streamHash: number, index: number): number {
    return score(this.pairHashOf(streamHash, index), this.weights[index]!);
  }

  /**
   * A cheap filter for "could member `index` own this stream": false means its score is
   * below the first cut, where it can win only if every member is (about 1 stream in
   * 400). O(1); confirm with `ownerIndex` when exactness matters.
   */
  passesCut(streamHash: number, index: number): boolean {
    return this.pairHashOf(streamHash, index) > this.firstCut[index]!;
  }

  /** Whether member `a` beats member `b` for this stream (the total order of the definition). */
  prefers(streamHash: number, a: number, b: number): boolean {
    const ha = this.pairHashOf(streamHash, a);
    const hb = this.pairHashOf(streamHash, b);
    const sa = score(ha, this.weights[a]!);
    const sb = score(hb, this.weights[b]!);
    return sa > sb || (sa === sb && (ha > hb || (ha === hb && a < b)));
  }

  /** Index (into `ids`) of the winning member for a stream hash, or -1 with no members. */
  ownerIndex(streamHash: number): number {
    const n = this.ids.length;
    if (n === 0) return NONE;
    const mh = this.memberHashes;
    if (this.uniform) {
      // Equal weights: the highest pair hash has the highest score. Inlined fmix32.
      let best = 0;
      let bh = -1;
      for (let i = 0; i < n; i++) {
        let h = streamHash ^ mh[i]!;
        h ^= h >>> 16;
        h = Math.imul(h, 0x85ebca6b);
        h ^= h >>> 13;
        h = Math.imul(h, 0xc2b2ae35);
        h ^= h >>> 16;
        h >>>= 0;
        if (h > bh) {
          bh = h;
          best = i;
        }
      }
      return best;
    }
    for (const cut of this.cuts) {
      const i = this.bestAboveCut(streamHash, cut, null, n);
      if (i !== NONE) return i;
    }
    return this.bestScan(streamHash, null, n);
  }

  /**
   * `ownerIndex` of many stream hashes at once: the same answers, several times faster
   * for large batches (the SIMD kernel).
   */
  ownerIndexes(streamHashes: ArrayLike<number>): Int32Array {
    const n = streamHashes.length;
    const out = new Int32Array(n);
    const m = this.ids.length;
    const k = m >= 16 && n * m >= 50_000 && this.kernelCut ? scanKernel() : null;
    if (!k) {
      for (let x = 0; x < n; x++) out[x] = this.ownerIndex(streamHashes[x]!);
      return out;
    }
    // Layout: member hashes, cuts, one chunk of stream hashes, the kernel's answers.
    const chunk = Math.min(n, KERNEL_CHUNK);
    const stride = KERNEL_PASSERS + 1;
    const sOff = 8 * m;
    const oOff = sOff + 4 * chunk;
    const bytes = oOff + 4 * chunk * stride;
    if (k.memory.buffer.byteLength < bytes) k.memory.grow(Math.ceil((bytes - k.memory.buffer.byteLength) / 65536));
    const buf = k.memory.buffer;
    new Int32Array(buf, 0, m).set(this.memberHashes);
    new Uint32Array(buf, 4 * m, m).set(this.kernelCut!);
    const streams = new Uint32Array(buf, sOff, chunk);
    const res = new Int32Array(buf, oOff, chunk * stride);
    const mh = this.memberHashes;
    const w = this.weights;
    for (let start = 0; start < n; start += chunk) {
      const len = Math.min(chunk, n - start);
      for (let x = 0; x < len; x++) streams[x] = streamHashes[start + x]!;
      k.passers(sOff, len, 0, 4 * m, m, oOff, KERNEL_PASSERS);
      for (let x = 0; x < len; x++) {
        const sh = streams[x]!;
        const base = x * stride;
        const count = res[base]!;
        if (count === 0 || count > KERNEL_PASSERS) {
          out[start + x] = this.ownerIndex(sh); // nobody above the cut, or too many: the full scan
          continue;
        }
        let best = -1;
        let bs = 0;
        let bh = 0;
        for (let q = 1; q <= count; q++) {
          const i = res[base + q]!;
          const h = pairHash(sh, mh[i]!);
          if (best >= 0 && dominated(h, w[i]!, bh, w[best]!)) continue;
          const s = this.uniform ? 0 : score(h, w[i]!);
          if (best < 0 || s > bs || (s === bs && (h > bh || (h === bh && i < best)))) {
            best = i;
            bs = s;
            bh = h;
          }
        }
        out[start + x] = best;
      }
    }
    return out;
  }

  /** The winning member id for a stream key, or undefined with no members. */
  owner(streamKey: string): string | undefined {
    const i = this.ownerIndex(hashString(streamKey));
    return i < 0 ? undefined : this.ids[i];
  }

  /**
   * The best member among the first `count` indexes of `candidates` (any order), by the
   * same order as `ownerIndex`. Returns -1 when there is no candidate.
   */
  bestAmong(streamHash: number, candidates: Int32Array, count: number): number {
    if (count <= 0) return NONE;
    if (count <= 8) return this.bestScan(streamHash, candidates, count);
    if (this.uniform) return this.bestUniform(streamHash, candidates, count);
    for (const cut of this.cuts) {
      const i = this.bestAboveCut(streamHash, cut, candidates, count);
      if (i !== NONE) return i;
    }
    return this.bestScan(streamHash, candidates, count);
  }

  /**
   * The best member among those `allowed` (by index), or -1 when nothing is allowed.
   * Prefer `bestAmong` in loops: it avoids a call per member.
   */
  bestAllowed(streamHash: number, allowed: (index: number) => boolean): number {
    const list = new Int32Array(this.ids.length);
    let count = 0;
    for (let i = 0; i < this.ids.length; i++) if (allowed(i)) list[count++] = i;
    return this.bestAmong(streamHash, list, count);
  }

  private bestUniform(streamHash: number, candidates: Int32Array, count: number): number {
    let best = NONE;
    let bh = -1;
    for (let k = 0; k < count; k++) {
      const i = candidates[k]!;
      const h = pairHash(streamHash, this.memberHashes[i]!);
      if (h > bh || (h === bh && i < best)) {
        bh = h;
        best = i;
      }
    }
    return best;
  }

  /** Exact scan over members whose pair hash passes the cut; -1 if none does. */
  private bestAboveCut(streamHash: number, cut: Float64Array, candidates: Int32Array | null, count: number): number {
    let best = NONE;
    let bs = 0;
    let bh = 0;
    for (let k = 0; k < count; k++) {
      const i = candidates === null ? k : candidates[k]!;
      const h = pairHash(streamHash, this.memberHashes[i]!);
      if (h <= cut[i]!) continue;
      if (best !== NONE && dominated(h, this.weights[i]!, bh, this.weights[best]!)) continue;
      const s = score(h, this.weights[i]!);
      if (best === NONE || s > bs || (s === bs && (h > bh || (h === bh && i < best)))) {
        best = i;
        bs = s;
        bh = h;
      }
    }
    return best;
  }

  private bestScan(streamHash: number, candidates: Int32Array | null, count: number): number {
    let best = NONE;
    let bs = 0;
    let bh = 0;
    for (let k = 0; k < count; k++) {
      const i = candidates === null ? k : candidates[k]!;
      const h = pairHash(streamHash, this.memberHashes[i]!);
      const s = score(h, this.weights[i]!);
      if (best === NONE || s > bs || (s === bs && (h > bh || (h === bh && i < best)))) {
        best = i;
        bs = s;
        bh = h;
      }
    }
    return best;
  }

  /**
   * For cut S: per member the largest h in [-1, 2^32-1] with score(h, w) ≤ S, found from
   * the closed form and then corrected with the score function itself, so "h > cut" is
   * exactly "score > S" (score is non-decreasing in h).
   */
  private cutTable(cutScore: number): Float64Array {
    const out = new Float64Array(this.ids.length);
    const MAX = 4294967295;
    for (let i = 0; i < out.length; i++) {
      const w = this.weights[i]!;
      let t = Math.floor(4294967296 * Math.exp(-w / cutScore) - 0.5);
      t = Math.min(MAX, Math.max(-1, t));
      while (t < MAX && score(t + 1, w) <= cutScore) t++;
      while (t >= 0 && score(t, w) > cutScore) t--;
      out[i] = t;
    }
    return out;
  }
}
