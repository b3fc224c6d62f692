/**
 * An independent record of what the simulated workers served, and the checks on it.
 * It is fed only by the workers (start/stop of a stream, on one monotonic clock:
 * performance.now() of the test process) and by the scenario's own events (faults
 * applied and healed, kills). It never reads the agents' state, except `agreement()`,
 * which compares the cluster's answer with this record.
 *
 * Checks:
 * - overlaps(): every instant two workers served one stream, with stream, workers, start
 *   and duration (intervals are closed at the end of observation);
 * - gaps(from, to): every stretch in [from, to] where a stream was served by nobody — a
 *   worker that holds a stream it cannot hear (`cannotHear`) does not serve it from then on;
 * - owners(): which workers serve each stream right now.
 * history() prints the seed, the events and, per problem stream, its interval timeline.
 */

export interface Interval {
  readonly worker: string;
  readonly stream: string;
  readonly start: number;
  end: number | undefined;
}

export interface OverlapFound {
  readonly stream: string;
  readonly workers: readonly [string, string];
  readonly start: number;
  readonly durationMs: number;
}

export interface GapFound {
  readonly stream: string;
  readonly start: number;
  readonly durationMs: number;
  /** The gap was still open at `to`. */
  readonly open: boolean;
}

export interface HistoryEvent {
  readonly at: number;
  readonly what: string;
}

export class ServedLog {
  readonly t0 = performance.now();
  private readonly byStream = new Map<string, Interval[]>();
  private readonly openNow = new Map<string, Interval>();
  /** worker\u0000stream → since when that worker cannot hear that stream. */
  private readonly deaf = new Map<string, number>();
  readonly events: HistoryEvent[] = [];

  constructor(
    readonly seed: number,
    readonly catalog: readonly string[],
  ) {}

  now(): number {
    return performance.now();
  }

  /** Seconds since the log began, for printing. */
  rel(t: number): string {
    return ((t - this.t0) / 1000).toFixed(2);
  }

  event(what: string, at = this.now()): void {
    this.events.push({ at, what });
  }

  started(worker: string, stream: string, at = this.now()): void {
    const key = `${worker}\u0000${stream}`;
    if (this.openNow.has(key)) return;
    const iv: Interval = { worker, stream, start: at, end: undefined };
    this.openNow.set(key, iv);
    const list = this.byStream.get(stream);
    if (list) list.push(iv);
    else this.byStream.set(stream, [iv]);
  }

  stopped(worker: string, stream: string, at = this.now()): void {
    const key = `${worker}\u0000${stream}`;
    const iv = this.openNow.get(key);
    if (!iv) return;
    iv.end = at;
    this.openNow.delete(key);
  }

  /** From `at` on, `worker` holds `stream` without hearing it: it still counts for overlaps, not for coverage. */
  cannotHear(worker: string, stream: string, at = this.now()): void {
    this.deaf.set(`${worker}\u0000${stream}`, at);
  }

  /** When `worker` stopped hearing `stream` (Infinity: it hears it). */
  deafSince(worker: string, stream: string): number {
    return this.deaf.get(`${worker}\u0000${stream}`) ?? Infinity;
  }

  intervals(stream: string): readonly Interval[] {
    return this.byStream.get(stream) ?? [];
  }

  /** Workers serving each catalog stream now (empty list = unserved). */
  owners(): Map<string, string[]> {
    const out = new Map<string, string[]>(this.catalog.map((s) => [s, []]));
    for (const iv of this.openNow.values()) {
      const l = out.get(iv.stream);
      if (l) l.push(iv.worker);
      else out.set(iv.stream, [iv.worker]);
    }
    return out;
  }

  /** Streams each worker serves now. */
  servedBy(): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const iv of this.openNow.values()) {
      const s = out.get(iv.worker) ?? new Set<string>();
      s.add(iv.stream);
      out.set(iv.worker, s);
    }
    return out;
  }

  /** Every intersection of two different workers' intervals on one stream. */
  overlaps(until = this.now()): OverlapFound[] {
    const out: OverlapFound[] = [];
    for (const [stream, list] of this.byStream) {
      for (let i = 0; i < list.length; i++) {
        for (let j = i + 1; j < list.length; j++) {
          const a = list[i]!;
          const b = list[j]!;
          if (a.worker === b.worker) continue;
          const start = Math.max(a.start, b.start);
          const end = Math.min(a.end ?? until, b.end ?? until);
          if (end > start) out.push({ stream, workers: [a.worker, b.worker], start, durationMs: end - start });
        }
      }
    }
    return out.sort((x, y) => x.start - y.start);
  }

  /** Every stretch within [from, to] where a catalog stream was heard by nobody. */
  gaps(from: number, to = this.now()): GapFound[] {
    const out: GapFound[] = [];
    for (const stream of this.catalog) {
      const spans = this.intervals(stream)
        .map((iv) => [iv.start, Math.min(iv.end ?? to, this.deafSince(iv.worker, stream))] as const)
        .filter(([s, e]) => e > from && s < to)
        .sort((a, b) => a[0] - b[0]);
      let covered = from;
      for (const [s, e] of spans) {
        if (s > covered) out.push({ stream, start: covered, durationMs: s - covered, open: false });
        covered = Math.max(covered, e);
      }
      if (covered < to) out.push({ stream, start: covered, durationMs: to - covered, open: true });
    }
    return out;
  }

  /** A compact history: seed, events, and the timelines of the given streams around `around`. */
  history(opts: { streams?: readonly string[]; around?: readonly [number, number]; title?: string } = {}): string {
    const lines: string[] = [];
    lines.push(`=== ${opts.title ?? "history"} (seed ${this.seed}; times in s since the start of the run) ===`);
    lines.push("events:");
    for (const e of this.events) lines.push(`  ${this.rel(e.at).padStart(7)}  ${e.what}`);
    const [lo, hi] = opts.around ?? [-Infinity, Infinity];
    const streams = opts.streams ?? [];
    if (streams.length) lines.push(`streams (intervals per worker${Number.isFinite(lo) ? `, those touching ${this.rel(lo)}–${this.rel(hi)}` : ""}):`);
    for (const s of streams) {
      const ivs = this.intervals(s).filter((iv) => (iv.end ?? Infinity) >= lo && iv.start <= hi);
      const deaf = (iv: Interval) => (this.deafSince(iv.worker, s) < Infinity ? `(deaf from ${this.rel(this.deafSince(iv.worker, s))})` : "");
      const txt = ivs.map((iv) => `${iv.worker}[${this.rel(iv.start)}–${iv.end === undefined ? "…" : this.rel(iv.end)}]${deaf(iv)}`).join(" ");
      lines.push(`  ${s.padStart(4)}: ${txt || "(none)"}`);
    }
    return lines.join("\n");
  }
}

/** What a scenario run measured, and whether it met its bounds. */
export interface Verdict {
  readonly pass: boolean;
  readonly failures: string[];
  readonly overlaps: OverlapFound[];
  /** Of those, the ones that began before `from` (the first fault): start-up handoffs. */
  readonly overlapsBeforeFault: OverlapFound[];
  readonly overlapTotalMs: number;
  readonly overlapMaxMs: number;
  readonly longestGap: GapFound | undefined;
  readonly gapsOverBound: GapFound[];
}

export interface Bounds {
  /** Longest allowed gap in a stream's coverage after the first fault, in ms. */
  readonly gapMs: number;
  /** Total overlap allowed, in ms (0 = none). */
  readonly overlapMs: number;
}

/** Applies the bounds to the record over [from, to]. */
export function judge(log: ServedLog, bounds: Bounds, from: number, to = log.now()): Verdict {
  const all = log.overlaps(to);
  const overlapsBeforeFault = all.filter((o) => o.start < from);
  // The totals are about the fault window; earlier overlaps still fail the run, listed apart.
  const overlaps = all.filter((o) => o.start >= from);
  const overlapTotalMs = overlaps.reduce((a, o) => a + o.durationMs, 0);
  const overlapMaxMs = overlaps.reduce((a, o) => Math.max(a, o.durationMs), 0);
  const gaps = log.gaps(from, to);
  const longestGap = gaps.reduce<GapFound | undefined>((a, g) => (!a || g.durationMs > a.durationMs ? g : a), undefined);
  const gapsOverBound = gaps.filter((g) => g.durationMs > bounds.gapMs);
  const failures: string[] = [];
  if (overlapTotalMs > bounds.overlapMs) {
    failures.push(`${overlaps.length} overlap(s), total ${(overlapTotalMs / 1000).toFixed(2)} s, max ${(overlapMaxMs / 1000).toFixed(2)} s (allowed ${bounds.overlapMs} ms)`);
    for (const o of overlaps.slice(0, 40)) failures.push(`  overlap stream ${o.stream}: ${o.workers.join(" & ")} from ${log.rel(o.start)} for ${(o.durationMs / 1000).toFixed(2)} s`);
    if (overlaps.length > 40) failures.push(`  … ${overlaps.length - 40} more`);
  }
  if (overlapsBeforeFault.length) {
    failures.push(`${overlapsBeforeFault.length} overlap(s) BEFORE the first fault (start-up handoffs), max ${(Math.max(...overlapsBeforeFault.map((o) => o.durationMs)) / 1000).toFixed(2)} s`);
    for (const o of overlapsBeforeFault.slice(0, 10)) failures.push(`  overlap stream ${o.stream}: ${o.workers.join(" & ")} from ${log.rel(o.start)} for ${(o.durationMs / 1000).toFixed(2)} s`);
  }
  if (gapsOverBound.length) {
    failures.push(`${gapsOverBound.length} gap(s) over ${(bounds.gapMs / 1000).toFixed(2)} s; longest ${(longestGap!.durationMs / 1000).toFixed(2)} s (stream ${longestGap!.stream} from ${log.rel(longestGap!.start)})`);
    for (const g of gapsOverBound.slice(0, 20)) failures.push(`  gap stream ${g.stream}: from ${log.rel(g.start)} for ${(g.durationMs / 1000).toFixed(2)} s${g.open ? " (still open)" : ""}`);
  }
  return { pass: failures.length === 0, failures, overlaps, overlapsBeforeFault, overlapTotalMs, overlapMaxMs, longestGap, gapsOverBound };
}

/** The cluster's answer (GET /status and GET /streams/status of one agent) against the record. */
export interface ClusterAnswer {
  readonly leaderReady: boolean;
  readonly unassigned: number;
  readonly revoking: number;
  /** instance id → stream ids it owns, per /streams/status. */
  readonly distribution: ReadonlyMap<string, ReadonlySet<string>>;
}

/** Differences between the record (exactly one worker per stream) and the cluster's answer; [] = they agree. */
export function agreement(log: ServedLog, answer: ClusterAnswer, workers: readonly string[]): string[] {
  const out: string[] = [];
  for (const [stream, ws] of log.owners()) if (ws.length !== 1) out.push(`stream ${stream} served by ${ws.length ? ws.join(",") : "nobody"}`);
  if (!answer.leaderReady) out.push("no ready leader in /status");
  if (answer.unassigned !== 0) out.push(`/status: ${answer.unassigned} unassigned`);
  if (answer.revoking !== 0) out.push(`/status: ${answer.revoking} in handoff`);
  const served = log.servedBy();
  for (const w of workers) {
    const mine = [...(served.get(w) ?? [])].sort();
    const theirs = [...(answer.distribution.get(w) ?? [])].sort();
    if (mine.join(",") !== theirs.join(",")) out.push(`${w}: worker serves [${mine.join(",")}], /streams/status says [${theirs.join(",")}]`);
  }
  return out;
}
