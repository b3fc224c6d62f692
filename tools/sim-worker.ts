/**
 * A simulated fingerv7 worker that obeys the lease exactly as a real one must:
 * - it long-polls GET /v1/assignment?version=V&wait=S and replaces what it processes
 *   with exactly the returned set;
 * - its lease runs from the moment it SENT the request that was answered, for lease_ms;
 *   when the lease runs out without a new answer it stops everything at once;
 * - it reports progress with POST /v1/report, one report per capture cycle (reportEveryMs):
 *   per stream "processing" (started since the last report), "ok" or "failed" + error.
 * Failure rules make it fail like a real one (nothing fails without a rule):
 * - a rule with `on` fails its streams only on workers whose labels hold every pair
 *   (geo-blocking: fails on exit=nl, works on exit=br); without `on`, everywhere it is
 *   given (a dead upstream, when every worker has it; a broken worker, with streams "*");
 * - rateLimit(until) reports a recognition-service pause as rate_limited_until (ISO, then
 *   null once cleared or over); while paused its streams report "processing".
 * It does NOT decide anything from its failures: it keeps processing whatever the agent
 * says, exactly as a real worker does; moving streams away is the agent's job.
 * Used by the demo and by the cluster tests (whose observer samples `serving`).
 */
import { parseLabels as parseSharedLabels, satisfies, type Labels } from "../shared/labels.js";

export type { Labels };

/** An answer of GET /v1/assignment, as far as a worker reads it. */
export interface AssignmentAnswer {
  readonly version: number;
  readonly lease_ms: number;
  readonly streams: readonly { readonly id: number | string }[];
}

/**
 * One ask of GET /v1/assignment: the first plain, then long-polling `waitS` past
 * `version`. `sentAt` (performance.now() before sending) is where the lease counts from.
 */
export async function askAssignment(url: string, version: number | undefined, waitS: number, signal: AbortSignal): Promise<{ sentAt: number; body: AssignmentAnswer }> {
  const sentAt = performance.now();
  const q = version === undefined ? "" : `?version=${version}&wait=${waitS}`;
  const res = await fetch(`${url}/v1/assignment${q}`, { signal: AbortSignal.any([signal, AbortSignal.timeout((waitS + 5) * 1000)]) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return { sentAt, body: (await res.json()) as AssignmentAnswer };
}

export interface FailureRule {
  /** The streams that fail ("*": every stream). */
  readonly streams: readonly string[] | "*";
  /** Fail only on a worker whose labels include every one of these pairs. */
  readonly on?: Labels;
  /** The error reported, e.g. "403 Forbidden", "connection refused". */
  readonly error: string;
}

export interface SimWorkerOptions {
  readonly url: string;
  /** Long-poll wait in seconds. */
  readonly waitS?: number;
  /** One capture cycle: how often outcomes are reported. */
  readonly reportEveryMs?: number;
  readonly onChange?: (serving: ReadonlySet<string>) => void;
  /** This worker's labels: the same as its agent's LABELS. */
  readonly labels?: Labels;
  readonly failures?: readonly FailureRule[];
}

/** "exit=nl,region=sudeste" → { exit: "nl", region: "sudeste" }, by the agents' own rule; a bad pair is an error. */
export function parseLabels(text: string): Labels {
  const parsed = parseSharedLabels(text);
  if (!parsed.ok) throw new Error(`bad labels ${JSON.stringify(text)}: ${parsed.error}`);
  return parsed.labels;
}

/** The error a capture of `stream` gets on a worker with `labels`, or undefined when it works. */
export function failureOf(stream: string, labels: Labels, rules: readonly FailureRule[]): string | undefined {
  for (const r of rules) {
    if (r.streams !== "*" && !r.streams.includes(stream)) continue;
    if (r.on && !satisfies(labels, r.on)) continue;
    return r.error;
  }
  return undefined;
}

export class SimWorker {
  private servingSet = new Set<string>();
  private deadline = 0;
  private version: number | undefined;
  private stopped = false;
  private expiry: NodeJS.Timeout | undefined;
  private processed = 0;
  private loopDone: Promise<void> | undefined;
  private reporter: NodeJS.Timeout | undefined;
  private ctl = new AbortController();
  private reportedSet = new Set<string>();
  private pausedUntil: number | null = null;
  private pauseToSend: string | null | undefined;
  private errors = 0;
  lastError: string | undefined;
  fetches = 0;
  /** Failed captures reported so far. */
  failedReports = 0;
  private failures: readonly FailureRule[];

  constructor(private readonly o: SimWorkerOptions) {
    this.failures = o.failures ?? [];
  }

  /** Replaces the failure rules; the next capture cycle follows them. */
  setFailures(rules: readonly FailureRule[]): void {
    this.failures = rules;
  }

  /** What this worker processes at this instant (empty once its lease ran out). */
  get serving(): ReadonlySet<string> {
    if (performance.now() >= this.deadline && this.servingSet.size > 0) this.apply(new Set(), "lease expired");
    return this.servingSet;
  }

  start(): void {
    this.loopDone = this.loop();
    this.reporter = setInterval(() => void this.report(), this.o.reportEveryMs ?? 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ctl.abort();
    if (this.expiry) clearTimeout(this.expiry);
    if (this.reporter) clearInterval(this.reporter);
    this.apply(new Set(), "stopped");
    await this.loopDone?.catch(() => {});
  }

  /**
   * The recognition service paused this worker until `untilMs` (wall clock, ms since the
   * epoch), or the pause is over (null). Sent with the next report.
   */
  rateLimit(untilMs: number | null): void {
    this.pausedUntil = untilMs;
    this.pauseToSend = untilMs === null ? null : new Date(untilMs).toISOString();
  }

  private apply(next: Set<string>, _why: string): void {
    const same = next.size === this.servingSet.size && [...next].every((s) => this.servingSet.has(s));
    this.servingSet = next;
    if (!same) this.o.onChange?.(next);
  }

  private async loop(): Promise<void> {
    const wait = this.o.waitS ?? 10;
    while (!this.stopped) {
      try {
        const { sentAt, body } = await askAssignment(this.o.url, this.version, wait, this.ctl.signal);
        if (this.stopped) return;
        this.fetches++;
        this.version = body.version;
        this.deadline = sentAt + body.lease_ms;
        this.apply(body.lease_ms > 0 ? new Set(body.streams.map((s) => String(s.id))) : new Set(), "assignment");
        this.armExpiry();
        this.lastError = undefined;
      } catch (err) {
        if (this.stopped) return;
        this.lastError = err instanceof Error ? err.message : String(err);
        // The agent is unreachable: keep serving until the lease runs out, then stop.
        this.armExpiry();
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private armExpiry(): void {
    if (this.expiry) clearTimeout(this.expiry);
    const left = this.deadline - performance.now();
    if (left <= 0) {
      this.apply(new Set(), "lease expired");
      return;
    }
    this.expiry = setTimeout(() => {
      if (performance.now() >= this.deadline) this.apply(new Set(), "lease expired");
    }, left + 1);
  }

  private async report(): Promise<void> {
    if (this.stopped) return;
    const now = Date.now();
    const paused = this.pausedUntil !== null && now < this.pausedUntil;
    if (this.pausedUntil !== null && !paused) this.rateLimit(null); // the pause is over
    const serving = [...this.servingSet];
    const rules = this.failures;
    const streams = serving.map((id) => {
      if (paused || !this.reportedSet.has(id)) return { id, status: "processing" };
      const error = failureOf(id, this.o.labels ?? {}, rules);
      return error === undefined ? { id, status: "ok" } : { id, status: "failed", error };
    });
    this.reportedSet = new Set(serving);
    const failed = streams.filter((s) => s.status === "failed").length;
    this.errors += failed;
    this.processed += streams.length - failed;
    const body: Record<string, unknown> = { processed_count: this.processed, error_count: this.errors, streams };
    const pause = this.pauseToSend;
    if (pause !== undefined || paused) body.rate_limited_until = pause ?? new Date(this.pausedUntil!).toISOString();
    try {
      const res = await fetch(`${this.o.url}/v1/report`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(2000),
      });
      if (res.ok) {
        this.failedReports += failed;
        if (this.pauseToSend === pause) this.pauseToSend = undefined;
      }
    } catch {
      // The agent may be down; reports are best effort.
    }
  }
}
