/**
 * The link to the one worker beside this agent, whichever API it speaks: what it is
 * offered (agent/serving.ts), what it reported, its health, the capacity it declared and,
 * for the older API, which worker id the sidecar is bound to.
 *
 * Guarantees:
 * - Both worker APIs go through `assignment()`: one place records what was offered and
 *   what the worker may still hold.
 * - One sidecar, one worker (older API): the first id that calls binds the sidecar (this
 *   agent's INSTANCE_ID is always accepted as an alias). Another id is refused while the
 *   bound worker was heard from within WORKER_TIMEOUT; after that, by when its answers
 *   no longer count as held, a new id takes over.
 * - A v1 long-poll is answered while the worker still holds half the lease it counts
 *   (from its request), and with a lease that leaves it as long as it waited, so the
 *   next answer can come in time whatever the renewals.
 * - A declared capacity replaces MAX_STREAMS while that worker is alive.
 * - Per-stream reports are kept only for streams currently offered (bounded memory).
 * It does not renew the lease (agent/heartbeat.ts) nor decide the offer (agent/offer.ts).
 */
import type { Clock } from "../shared/clock.js";
import type { Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import type { StreamId, WorkerHealth } from "../shared/types.js";
import { Serving, type Offer } from "./serving.js";

export type WorkerApi = "v1" | "legacy";

export interface StreamReport {
  readonly id: StreamId;
  readonly status: string;
  readonly error?: string;
}

export interface WorkerReport {
  readonly processed?: number;
  readonly errors?: number;
  readonly streams?: readonly StreamReport[];
  /** The worker is paused by a rate limit until then (ISO time); null: no longer. */
  readonly rateLimitedUntil?: string | null;
}

/** An older-API worker as the sidecar knows it (GET /api/workers). */
export interface BoundWorker {
  readonly id: string;
  workerType: string;
  /** Declared capacity; undefined = MAX_STREAMS. */
  capacity: number | undefined;
  status: string;
  ip: string | null;
  port: number | null;
  metadata: Record<string, unknown>;
  readonly registeredAt: string;
  /** Monotonic time of the last call of any kind. */
  lastSeen: number;
  lastSeenWall: string;
  currentLoad: number | undefined;
  availableCapacity: number | undefined;
  /** Streams in the last assign answer. */
  lastAssigned: number;
}

export type Claim = { readonly ok: true; readonly worker: BoundWorker; readonly created: boolean } | { readonly ok: false; readonly holder: BoundWorker; readonly silentMs: number };

export interface WorkerLinkOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly agentId: string;
  readonly maxStreams: number;
  readonly workerLeaseMs: number;
  readonly workerTimeoutMs: number;
  readonly longPollCapMs: number;
  /** The worker may hold less than before (it confirmed a newer version): heartbeat now. */
  readonly onHeldShrank: () => void;
  /** The worker gave streams up: recompute the offer and heartbeat now. */
  readonly onReleased: () => void;
  /** Where a declared capacity is remembered across restarts (null: forgotten). */
  readonly declared: { save(capacity: number | null): Promise<void> };
  /** Every report's stream outcomes and pause go here (agent/stream-outcomes.ts). */
  readonly onOutcomes?: (streams: readonly StreamReport[], rateLimitedUntil: string | null | undefined) => void;
}

/** Workers remembered for GET /api/workers besides the current one. */
const PAST_WORKERS = 10;

/** The shortest long-poll wait while a lease runs: a worker whose lease is about to lapse is answered at once, not in a spin. */
const MIN_LONG_POLL_MS = 20;

export class WorkerLink {
  readonly serving: Serving;
  private processed = 0;
  private errors = 0;
  private lastReportAt: number | undefined;
  private kind: WorkerHealth["kind"] = "none";
  private readonly states = new Map<StreamId, { status: string; error?: string; at: number }>();
  private declaredCapacity: number | undefined;
  /** Streams the worker gave up; forgotten once the leader acted on them. */
  private readonly releasedIds = new Set<StreamId>();
  private bound: BoundWorker | undefined;
  private past: BoundWorker[] = [];
  private readonly startedAt: number;
  /** streamStates' last answer and the listing it was computed for. */
  private statesCache: { listed: readonly unknown[]; out: Record<StreamId, { s: string; e?: string }> | undefined } | undefined;
  /** When the lease our last v1 answer gave the worker ends, as it counts it (from its request). */
  private workerLeaseEnd: number | undefined;

  constructor(private readonly o: WorkerLinkOptions) {
    this.serving = new Serving(o.clock, o.workerLeaseMs, o.workerTimeoutMs);
    this.startedAt = o.clock.now();
  }

  /**
   * A worker asks for its assignment. v1: `version` proves it applied that version (older
   * offers stop counting as held) and `waitMs` long-polls, answered early enough for the
   * worker's lease (longPollMs). legacy: the answer supersedes every earlier one.
   */
  async assignment(q: { api: WorkerApi; version?: number; waitMs?: number; signal?: AbortSignal }): Promise<Offer> {
    const arrived = this.o.clock.now();
    const heldBefore = this.serving.held().length;
    let offer: Offer;
    if (q.api === "legacy") {
      offer = this.serving.fetchLegacy();
    } else {
      if (q.version !== undefined) {
        this.serving.confirm(q.version);
        if (this.serving.held().length < heldBefore) this.o.onHeldShrank();
        if (q.waitMs !== undefined && q.waitMs > 0) await this.serving.waitForChange(q.version, Math.min(q.waitMs, this.longPollMs(arrived)), q.signal);
      }
      offer = this.serving.offer();
      // What the worker will count: its lease from its request (it sent it a little before it arrived).
      this.workerLeaseEnd = arrived + offer.leaseMs;
    }
    return this.answered(offer, q.api, heldBefore);
  }

  /**
   * How long a v1 long-poll arriving at `now` may wait. A worker dates its lease from when
   * it SENT its request, so every millisecond waited comes off the lease it counts, and a
   * new answer replaces the lease it held. So the wait is at most half of what is left of
   * the worker's lease (the one our last answer gave it, dated from that request, or ours
   * when it ends sooner): the answer comes while that lease still runs, with as long again
   * to spare; and at most a third of ours: the new lease still leaves the worker as long
   * as it waited, renewed or not meanwhile. Within a third of WORKER_LEASE (longPollCapMs),
   * at least MIN_LONG_POLL_MS. (A fixed wait of a third of WORKER_LEASE left a worker
   * whose heartbeats came one interval late nothing: two waits used its lease up, and
   * under load it stopped for a moment.) Without a lease of ours the wait is the cap:
   * nothing is served, and a new offer ends it anyway.
   */
  private longPollMs(now: number): number {
    const deadline = this.serving.leaseDeadline;
    const cap = this.o.longPollCapMs;
    if (now >= deadline) return cap;
    const workerEnd = this.workerLeaseEnd === undefined ? deadline : Math.min(this.workerLeaseEnd, deadline);
    return Math.max(MIN_LONG_POLL_MS, Math.min(cap, Math.floor((workerEnd - now) / 2), Math.floor((deadline - now) / 3)));
  }

  /** What a v1 worker is offered right now, recorded as held until its lease ends. */
  offerNow(): Offer {
    return this.answered(this.serving.offer(), "v1", this.serving.held().length);
  }

  private answered(offer: Offer, api: WorkerApi, heldBefore: number): Offer {
    if (api === "legacy" && this.serving.held().length < heldBefore) this.o.onHeldShrank();
    if (api === "legacy" && this.bound) this.bound.lastAssigned = offer.streams.length;
    this.o.metrics.streamsServed.set(offer.streams.length);
    return offer;
  }

  /** The worker reports (POST /v1/report, or the older API's heartbeat/update). */
  report(r: WorkerReport, api: WorkerApi): void {
    const now = this.o.clock.now();
    this.kind = api;
    this.lastReportAt = now;
    if (r.processed !== undefined) this.processed = r.processed;
    if (r.errors !== undefined) this.errors = r.errors;
    for (const s of r.streams ?? []) this.states.set(s.id, { status: s.status, error: s.error, at: now });
    if ((r.streams?.length ?? 0) > 0) this.statesCache = undefined;
    this.o.onOutcomes?.(r.streams ?? [], r.rateLimitedUntil);
    this.o.metrics.workerReports.inc();
    this.o.metrics.workerProcessed.set(this.processed);
    this.o.metrics.workerErrors.set(this.errors);
  }

  /**
   * The worker gave streams up (older API): they stop being offered and held, and the
   * next heartbeat tells the leader. `mine` says which ids are ours. Returns those.
   */
  release(ids: readonly StreamId[], mine: (id: StreamId) => boolean): StreamId[] {
    const listed = new Set(this.serving.streams.map((s) => s.id));
    const released = ids.filter((id) => listed.has(id) || mine(id));
    for (const id of released) this.releasedIds.add(id);
    this.serving.released(released);
    this.o.onReleased();
    return released;
  }

  get released(): ReadonlySet<StreamId> {
    return this.releasedIds;
  }

  forgetReleased(ids: readonly StreamId[]): void {
    for (const id of ids) this.releasedIds.delete(id);
  }

  /**
   * A new agent process: the worker beside it may have outlived the previous process, so
   * it may still be processing that process's rows (counted as held until it applies one
   * of our answers, or for a full WORKER_LEASE — the longest a lease the previous process
   * granted can still run — or WORKER_TIMEOUT when longer: an older-API worker has no
   * lease), and its declared capacity still holds.
   */
  inherit(rows: readonly StreamId[], declaredCapacity: number | null): void {
    this.serving.inherit(rows, Math.max(this.o.workerLeaseMs, this.o.workerTimeoutMs));
    if (declaredCapacity !== null) this.declaredCapacity = declaredCapacity;
  }

  /** Capacity announced to the cluster: a declared capacity wins while its worker is alive. */
  capacity(now = this.o.clock.now()): number {
    return this.declaredCapacity !== undefined && this.health(now).ok ? this.declaredCapacity : this.o.maxStreams;
  }

  health(now = this.o.clock.now()): WorkerHealth {
    const fetched = this.serving.workerSilentMs(now);
    const reported = this.lastReportAt === undefined ? undefined : now - this.lastReportAt;
    const silent = fetched === undefined ? reported : reported === undefined ? fetched : Math.min(fetched, reported);
    // A worker that has not called yet is given WORKER_TIMEOUT from our start to appear,
    // so a restarted agent keeps its streams while its worker reconnects.
    const starting = silent === undefined && now - this.startedAt <= this.o.workerTimeoutMs;
    return {
      ok: starting || (silent !== undefined && silent <= this.o.workerTimeoutMs),
      lastSeenMsAgo: silent === undefined ? null : Math.round(silent),
      processed: this.processed,
      errors: this.errors,
      kind: this.kind,
    };
  }

  /** What the worker is offered and may hold now, and how long its lease has left. */
  summary(now = this.o.clock.now()): { readonly offered: number; readonly held: number; readonly leaseMs: number } {
    return { offered: this.serving.streams.length, held: this.serving.held(now).length, leaseMs: Math.max(0, Math.round(this.serving.leaseDeadline - now)) };
  }

  /** The worker's last report per stream it is offered now (others are forgotten). */
  streamStates(): Record<StreamId, { s: string; e?: string }> | undefined {
    // The same answer (the same object) until a report or a new listing changes it.
    const cached = this.statesCache;
    if (cached && cached.listed === this.serving.streams) return cached.out;
    const out = this.computeStates();
    this.statesCache = { listed: this.serving.streams, out };
    return out;
  }

  private computeStates(): Record<StreamId, { s: string; e?: string }> | undefined {
    if (this.states.size === 0) return undefined;
    const out: Record<StreamId, { s: string; e?: string }> = {};
    const offered = new Set(this.serving.streams.map((x) => x.id));
    for (const [id, st] of this.states) {
      if (!offered.has(id)) {
        this.states.delete(id);
        continue;
      }
      out[id] = st.error ? { s: st.status, e: st.error.slice(0, 200) } : { s: st.status };
    }
    return out;
  }

  // ---- the older API's binding -------------------------------------------------------

  /** Which worker a call speaks for, binding or taking over the sidecar when allowed. */
  claim(id: string): Claim {
    const now = this.o.clock.now();
    const cur = this.bound;
    if (cur && (cur.id === id || id === this.o.agentId)) {
      this.touch(cur, now);
      return { ok: true, worker: cur, created: false };
    }
    if (cur) {
      const silentMs = now - cur.lastSeen;
      if (silentMs <= this.o.workerTimeoutMs) {
        this.o.metrics.workerIdConflicts.inc();
        this.o.logger.warn({ category: "INSTANCE", worker: id, serving: cur.id }, "call from a second worker refused");
        return { ok: false, holder: cur, silentMs };
      }
      this.past = [cur, ...this.past.filter((w) => w.id !== cur.id && w.id !== id)].slice(0, PAST_WORKERS);
      this.declaredCapacity = undefined;
      this.remember(null);
      this.o.logger.info({ category: "INSTANCE", from: cur.id, to: id, silentMs: Math.round(silentMs) }, "a new worker took over this sidecar");
    }
    const wall = new Date(this.o.clock.wall()).toISOString();
    const worker: BoundWorker = {
      id,
      workerType: "fingerv7",
      capacity: undefined,
      status: "active",
      ip: null,
      port: null,
      metadata: {},
      registeredAt: wall,
      lastSeen: now,
      lastSeenWall: wall,
      currentLoad: undefined,
      availableCapacity: undefined,
      lastAssigned: 0,
    };
    this.bound = worker;
    this.past = this.past.filter((w) => w.id !== id);
    this.kind = "legacy";
    return { ok: true, worker, created: true };
  }

  /** The worker states its capacity (register, or its first call after a sidecar restart). */
  declareCapacity(w: BoundWorker, capacity: number | undefined): void {
    if (capacity === undefined || capacity === w.capacity) return;
    w.capacity = capacity;
    this.declaredCapacity = capacity;
    this.remember(capacity);
    this.o.logger.info({ category: "INSTANCE", worker: w.id, capacity }, "the worker declared its capacity");
  }

  /** The bound worker first, then the ones it replaced. */
  boundWorkers(): { readonly worker: BoundWorker; readonly alive: boolean }[] {
    const now = this.o.clock.now();
    return [
      ...(this.bound ? [{ worker: this.bound, alive: now - this.bound.lastSeen <= this.o.workerTimeoutMs }] : []),
      ...this.past.map((worker) => ({ worker, alive: false })),
    ];
  }

  get maxStreams(): number {
    return this.o.maxStreams;
  }

  get workerTimeoutMs(): number {
    return this.o.workerTimeoutMs;
  }

  private remember(capacity: number | null): void {
    this.o.declared.save(capacity).catch((err) => {
      // Only a restart would forget it; the heartbeat announces the capacity anyway.
      this.o.logger.warn({ err, category: "ERROR" }, "could not record the declared capacity");
    });
  }

  private touch(w: BoundWorker, now: number): void {
    w.lastSeen = now;
    w.lastSeenWall = new Date(this.o.clock.wall()).toISOString();
    this.kind = "legacy";
  }
}
