/**
 * Simulated fingerv7 workers living in the test process, each recording into a ServedLog
 * exactly when it starts and stops a stream (one monotonic clock for all of them).
 *
 * LeaseWorker (the /v1 API, like tools/sim-worker.ts, plus a stop latency):
 * - long-polls GET /v1/assignment?version=V&wait=S; its lease runs from the moment it SENT
 *   the answered request, for lease_ms;
 * - starts a newly listed stream when the answer arrives; a stream no longer listed, or
 *   every stream when the lease runs out, starts stopping then (at the lease's end, even
 *   if the timer fires late) and is recorded as stopped when the stop completes, after a
 *   seeded random stop latency in [stopMs[0], stopMs[1]];
 * - asks with version=V only once every stop answer V asked for has completed (the
 *   contract: that request is the acknowledgement the hand-off waits for);
 * - reports with POST /v1/report every second: `processing` for each stream it serves,
 *   `failed` for one it was made deaf to (`deafen`: its exit cannot reach that stream).
 * LegacyWorker (the older API, like today's fingerv7 and test/legacy-client):
 * - registers (POST /api/workers/register), then polls GET /api/streams/assign every
 *   pollMs[0]..pollMs[1] ms (seeded); starts new streams at once, stops dropped streams
 *   late (stopLateMs[0]..stopLateMs[1] after the answer); keeps its cached set while the
 *   agent is unreachable ("local mode"); heartbeats every 10 s.
 * Neither reads anything but its own agent's answers.
 */
import { askAssignment } from "../../tools/sim-worker.js";
import type { ServedLog } from "./served-checker.js";

/** A small seeded PRNG (mulberry32). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
}

export interface FaultWorker {
  readonly id: string;
  start(): void;
  stop(): Promise<void>;
  /** Streams started and not yet fully stopped. */
  readonly serving: ReadonlySet<string>;
}

/** Sleeps `ms`, or less if `signal` aborts; leaves no listener on `signal` either way (it lives as long as the worker). */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((r) => {
    const onAbort = () => (clearTimeout(t), r());
    const t = setTimeout(() => (signal?.removeEventListener("abort", onAbort), r()), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/** Start/stop bookkeeping shared by both kinds: a stream is served from start until its stop completes. */
class Streams {
  readonly serving = new Set<string>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  constructor(
    private readonly id: string,
    private readonly log: ServedLog,
  ) {}

  /** Makes `next` the wanted set: starts what is new now, stops the rest after `delay()` counted from `from`. */
  apply(next: ReadonlySet<string>, delay: () => number, from = performance.now()): void {
    for (const s of next) {
      const p = this.pending.get(s);
      if (p) {
        clearTimeout(p);
        this.pending.delete(s);
      }
      if (!this.serving.has(s)) {
        this.serving.add(s);
        this.log.started(this.id, s);
      }
    }
    for (const s of this.serving) {
      if (next.has(s) || this.pending.has(s)) continue;
      const at = from + delay();
      const finish = () => {
        this.pending.delete(s);
        this.serving.delete(s);
        this.log.stopped(this.id, s, at);
      };
      const wait = at - performance.now();
      if (wait <= 0) finish();
      else this.pending.set(s, setTimeout(finish, wait));
    }
  }

  /** Resolves once every stop in progress has completed. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await sleep(10);
  }

  stopAll(): void {
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
    for (const s of this.serving) this.log.stopped(this.id, s);
    this.serving.clear();
  }
}

export interface LeaseWorkerOptions {
  readonly id: string;
  readonly url: string;
  readonly log: ServedLog;
  readonly rng: Rng;
  /** Stop latency range in ms (default 0–300). */
  readonly stopMs?: readonly [number, number];
  /** Long-poll wait in seconds (the agent caps it at a third of the lease). */
  readonly waitS?: number;
}

export class LeaseWorker implements FaultWorker {
  readonly id: string;
  private readonly streams: Streams;
  private deadline = 0;
  private version: number | undefined;
  private stopped = false;
  private readonly ctl = new AbortController();
  private expiry: NodeJS.Timeout | undefined;
  private reporter: NodeJS.Timeout | undefined;
  private done: Promise<void> | undefined;
  private readonly deaf = new Set<string>();
  fetches = 0;
  lastError: string | undefined;

  constructor(private readonly o: LeaseWorkerOptions) {
    this.id = o.id;
    this.streams = new Streams(o.id, o.log);
  }

  get serving(): ReadonlySet<string> {
    return this.streams.serving;
  }

  private stopDelay = (): number => {
    const [lo, hi] = this.o.stopMs ?? [0, 300];
    return this.o.rng.range(lo, hi);
  };

  start(): void {
    this.done = this.loop();
    this.reporter = setInterval(() => void this.report(), 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ctl.abort();
    if (this.expiry) clearTimeout(this.expiry);
    if (this.reporter) clearInterval(this.reporter);
    await this.done?.catch(() => {});
    this.streams.stopAll();
  }

  private async loop(): Promise<void> {
    const wait = this.o.waitS ?? 5;
    while (!this.stopped) {
      try {
        const { sentAt, body } = await askAssignment(this.o.url, this.version, wait, this.ctl.signal);
        if (this.stopped) return;
        this.fetches++;
        this.lastError = undefined;
        // Never extend an earlier, longer lease with a shorter one, and never count from the answer.
        const until = sentAt + body.lease_ms;
        if (body.lease_ms > 0) this.deadline = until;
        const want = body.lease_ms > 0 && until > performance.now() ? new Set(body.streams.map((s) => String(s.id))) : new Set<string>();
        this.streams.apply(want, this.stopDelay);
        this.armExpiry();
        // The contract: ask with version=V only once V is applied, i.e. once every stream
        // it dropped has really stopped (that request is the acknowledgement).
        await this.streams.settled();
        this.version = body.version;
      } catch (err) {
        if (this.stopped) return;
        this.lastError = err instanceof Error ? err.message : String(err);
        await sleep(100, this.ctl.signal);
      }
    }
  }

  private armExpiry(): void {
    if (this.expiry) clearTimeout(this.expiry);
    const at = this.deadline;
    this.expiry = setTimeout(() => {
      if (this.deadline === at) this.streams.apply(new Set(), this.stopDelay, at);
    }, Math.max(0, at - performance.now()));
  }

  /** From now on this worker cannot hear `stream`: it reports each capture of it as failed. */
  deafen(stream: string): void {
    this.deaf.add(stream);
  }

  private async report(): Promise<void> {
    if (this.stopped) return;
    const status = (id: string) => (this.deaf.has(id) ? { id, status: "failed", error: "simulated: the stream cannot be reached from this exit" } : { id, status: "processing" });
    await fetch(`${this.o.url}/v1/report`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ processed_count: this.fetches, error_count: 0, streams: [...this.serving].map(status) }),
      signal: AbortSignal.timeout(2000),
    }).catch(() => {});
  }
}

export interface LegacyWorkerOptions {
  readonly id: string;
  readonly url: string;
  readonly log: ServedLog;
  readonly rng: Rng;
  readonly capacity: number;
  /** Poll period range in ms (default 1000–3000). */
  readonly pollMs?: readonly [number, number];
  /** How late a dropped stream stops, in ms (default 0–1500). */
  readonly stopLateMs?: readonly [number, number];
}

export class LegacyWorker implements FaultWorker {
  readonly id: string;
  private readonly streams: Streams;
  private stopped = false;
  private readonly ctl = new AbortController();
  private done: Promise<void> | undefined;
  private lastHeartbeat = 0;
  polls = 0;
  lastError: string | undefined;

  constructor(private readonly o: LegacyWorkerOptions) {
    this.id = o.id;
    this.streams = new Streams(o.id, o.log);
  }

  get serving(): ReadonlySet<string> {
    return this.streams.serving;
  }

  private lateness = (): number => {
    const [lo, hi] = this.o.stopLateMs ?? [0, 1500];
    return this.o.rng.range(lo, hi);
  };

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ctl.abort();
    await this.done?.catch(() => {});
    this.streams.stopAll();
  }

  private async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.o.url}${path}`, {
      method,
      headers: body === undefined ? undefined : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.any([this.ctl.signal, AbortSignal.timeout(5000)]),
    });
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  }

  private async loop(): Promise<void> {
    const [lo, hi] = this.o.pollMs ?? [1000, 3000];
    let registered = false;
    while (!this.stopped) {
      try {
        if (!registered) {
          await this.call("POST", "/api/workers/register", {
            instance_id: this.id,
            worker_type: "fingerv7",
            capacity: this.o.capacity,
            status: "active",
            metadata: { version: "7", capabilities: ["audio_fingerprinting"] },
          });
          registered = true;
        }
        const q = new URLSearchParams({ worker_id: this.id, capacity: String(this.o.capacity), worker_type: "fingerv7" });
        const body = await this.call("GET", `/api/streams/assign?${q}`);
        if (this.stopped) return;
        this.polls++;
        this.lastError = undefined;
        const ids = Array.isArray(body.assigned_streams) ? body.assigned_streams.map(String) : [];
        this.streams.apply(new Set(ids), this.lateness);
        if (performance.now() - this.lastHeartbeat > 10_000) await this.heartbeat();
      } catch (err) {
        if (this.stopped) return;
        // Local mode: keep the cached streams while the agent cannot be reached.
        this.lastError = err instanceof Error ? err.message : String(err);
      }
      await sleep(this.o.rng.range(lo, hi), this.ctl.signal);
    }
  }

  private async heartbeat(): Promise<void> {
    this.lastHeartbeat = performance.now();
    const load = this.serving.size;
    await this.call("POST", "/api/heartbeat", {
      worker_instance_id: this.id,
      status: "active",
      current_load: load,
      available_capacity: Math.max(0, this.o.capacity - load),
      timestamp: new Date().toISOString(),
      metrics: { system: { cpu_percent: 10, memory_percent: 30 }, worker: { processed_count: this.polls } },
    }).catch(() => {});
  }
}
