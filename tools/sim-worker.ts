/**
 * A simulated fingerv7 worker that obeys the lease exactly as a real one must:
 * - it long-polls GET /v1/assignment?version=V&wait=S and replaces what it processes
 *   with exactly the returned set;
 * - its lease runs from the moment it SENT the request that was answered, for lease_ms;
 *   when the lease runs out without a new answer it stops everything at once;
 * - it reports progress with POST /v1/report.
 * Used by the demo and by the cluster tests (whose observer samples `serving`).
 */
export interface SimWorkerOptions {
  readonly url: string;
  /** Long-poll wait in seconds. */
  readonly waitS?: number;
  readonly reportEveryMs?: number;
  readonly onChange?: (serving: ReadonlySet<string>) => void;
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
  lastError: string | undefined;
  fetches = 0;

  constructor(private readonly o: SimWorkerOptions) {}

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

  private apply(next: Set<string>, _why: string): void {
    const same = next.size === this.servingSet.size && [...next].every((s) => this.servingSet.has(s));
    this.servingSet = next;
    if (!same) this.o.onChange?.(next);
  }

  private async loop(): Promise<void> {
    const wait = this.o.waitS ?? 10;
    while (!this.stopped) {
      const sentAt = performance.now();
      try {
        const q = this.version === undefined ? "" : `?version=${this.version}&wait=${wait}`;
        const res = await fetch(`${this.o.url}/v1/assignment${q}`, { signal: AbortSignal.any([this.ctl.signal, AbortSignal.timeout((wait + 5) * 1000)]) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = (await res.json()) as { version: number; lease_ms: number; streams: { id: number | string }[] };
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
    this.processed += this.servingSet.size;
    try {
      await fetch(`${this.o.url}/v1/report`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ processed_count: this.processed, error_count: 0, streams: [...this.servingSet].map((id) => ({ id, status: "processing" })) }),
        signal: AbortSignal.timeout(2000),
      });
    } catch {
      // The agent may be down; reports are best effort.
    }
  }
}
