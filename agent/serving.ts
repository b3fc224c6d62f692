/**
 * What the agent offers the worker beside it, and what that worker may be holding.
 * No I/O; time comes from the injected clock.
 *
 * Invariants (the worker half of the safety model):
 * 1. Every offer carries a lease that ends at `deadline`, which only ever comes from a
 *    heartbeat Redis confirmed (sent at t ⇒ deadline t + WORKER_LEASE), or, under
 *    ON_COORDINATION_LOSS=keep, from an attempt made while Redis was unreachable.
 *    Past the deadline, offers are empty: a frozen or cut-off agent's worker stops
 *    before HEARTBEAT_TIMEOUT, which is when anyone else may take its streams.
 * 2. `held()` is every stream in an offer the worker may still act on: offers not yet
 *    superseded (the worker proves it has version V by asking with ?version=V) whose
 *    lease has not run out. The heartbeat reports it; nobody else is given a stream
 *    while a live member reports holding it. That is the break-before-make handoff.
 */
import type { Clock } from "../shared/clock.js";
import type { Stream, StreamId } from "../shared/types.js";

export interface Offer {
  readonly version: number;
  readonly streams: readonly Stream[];
  readonly leaseMs: number;
}

interface OfferRecord {
  readonly version: number;
  ids: readonly StreamId[];
  until: number;
  /** `ids` is sorted and without repeats (an offer of the listing). */
  readonly sorted?: boolean;
}

/** The version of what a previous agent process offered: older than any of ours. */
const INHERITED = -1;

/** A legacy worker's answers that count as held: the current one and the two before it. */
const LEGACY_ANSWERS_HELD = 3;

/** Extra time an offer counts as held after its lease, for the response in flight. */
const HELD_MARGIN_MS = 100;

export class Serving {
  private listed: readonly Stream[] = [];
  private ver: number;
  private deadline = 0;
  private offers: OfferRecord[] = [];
  private waiters = new Set<() => void>();
  private lastFetch: number | undefined;
  /** Legacy workers ignore leases; their offers last until superseded or the worker goes quiet. */
  private legacyUntilMs: number;
  /** Versions of the legacy worker's last answers (oldest first). */
  private legacyAnswers: number[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly workerLeaseMs: number,
    workerTimeoutMs: number,
  ) {
    // Versions start from the wall clock so a restarted agent never repeats a version a
    // worker still remembers from the previous process.
    this.ver = Math.floor(clock.wall());
    this.legacyUntilMs = workerTimeoutMs;
  }

  get version(): number {
    return this.ver;
  }

  get streams(): readonly Stream[] {
    return this.listed;
  }

  /** The lease end by our monotonic clock (0 = never renewed). */
  get leaseDeadline(): number {
    return this.deadline;
  }

  leaseValid(now = this.clock.now()): boolean {
    return now < this.deadline;
  }

  /** Extends the lease to sentAt + WORKER_LEASE. Call only for a heartbeat sent at `sentAt` that may renew. */
  renew(sentAt: number): void {
    this.deadline = Math.max(this.deadline, sentAt + this.workerLeaseMs);
  }

  /** Ends the lease now and forgets it: the next renewal starts a fresh one. */
  expire(): void {
    this.deadline = 0;
  }

  /** Replaces the listed set. Returns true when it changed (and the version moved). */
  setListed(streams: readonly Stream[]): boolean {
    const sorted = [...streams].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (sameListing(sorted, this.listed)) return false;
    this.listed = sorted;
    this.ver++;
    for (const w of this.waiters) w();
    return true;
  }

  /**
   * A worker asks for its assignment. `workerVersion` is the version it already applied
   * (it supersedes every older offer). Returns what to send it.
   */
  fetch(workerVersion?: number): Offer {
    if (workerVersion !== undefined) this.confirm(workerVersion);
    return this.offer();
  }

  /**
   * The worker proves it applied `workerVersion` (it asked with ?version=V): every older
   * offer is superseded and no longer counts as held. Unknown versions are ignored.
   */
  confirm(workerVersion: number): void {
    this.lastFetch = this.clock.now();
    if (this.offers.some((o) => o.version === workerVersion)) {
      this.offers = this.offers.filter((o) => o.version >= workerVersion);
    }
  }

  /** What to send the worker now, recorded as held until its lease ends. */
  offer(): Offer {
    const now = this.clock.now();
    this.lastFetch = now;
    this.prune(now);
    if (now >= this.deadline) {
      // Invariant 1: no lease, no streams.
      if (this.listed.length > 0) this.setListed([]);
      return { version: this.ver, streams: [], leaseMs: 0 };
    }
    const leaseMs = Math.floor(this.deadline - now);
    this.record(this.ver, this.deadline);
    return { version: this.ver, streams: this.listed, leaseMs };
  }

  /**
   * A legacy worker (no leases) asks: it replaces what it processes with exactly this
   * set. It applies an answer some time after receiving it (a capture in progress runs
   * to its end: fingerv7 stops up to ~1.5 s late), so a stream dropped by answer k counts
   * as held until the worker's next-but-one call (k + 2), by when it has surely applied
   * answer k; or until it has been quiet for WORKER_TIMEOUT.
   */
  fetchLegacy(): Offer {
    const now = this.clock.now();
    this.lastFetch = now;
    this.legacyAnswers = [...this.legacyAnswers, this.ver].slice(-LEGACY_ANSWERS_HELD);
    const oldest = this.legacyAnswers[0]!;
    this.offers = this.offers.filter((o) => o.version >= oldest);
    this.prune(now);
    if (now >= this.deadline) {
      if (this.listed.length > 0) this.setListed([]);
      return { version: this.ver, streams: [], leaseMs: 0 };
    }
    this.record(this.ver, now + this.legacyUntilMs);
    return { version: this.ver, streams: this.listed, leaseMs: Math.floor(this.deadline - now) };
  }

  /**
   * A new agent process starts beside a worker that may have outlived the previous one:
   * until `untilMs` from now, or until the worker applies one of our answers, it may still
   * be processing `ids` (the rows the previous process was serving).
   */
  inherit(ids: readonly StreamId[], untilMs: number): void {
    if (ids.length === 0) return;
    this.offers.push({ version: INHERITED, ids: [...ids], until: this.clock.now() + untilMs });
  }

  /** A legacy worker gave these streams up (POST /streams/release): they are no longer held. */
  released(ids: readonly StreamId[]): void {
    const drop = new Set(ids);
    for (const o of this.offers) o.ids = o.ids.filter((id) => !drop.has(id));
  }

  /** Streams the worker may be processing right now (invariant 2). Sorted. */
  held(now = this.clock.now()): StreamId[] {
    this.prune(now);
    // One offer of ours (the steady state): its ids are the listing's, already sorted and unique.
    if (this.offers.length === 1 && this.offers[0]!.version !== INHERITED && this.offers[0]!.sorted) return [...this.offers[0]!.ids];
    const out = new Set<StreamId>();
    for (const o of this.offers) for (const id of o.ids) out.add(id);
    return [...out].sort();
  }

  /** Milliseconds since the worker last fetched, or undefined if it never did. */
  workerSilentMs(now = this.clock.now()): number | undefined {
    return this.lastFetch === undefined ? undefined : now - this.lastFetch;
  }

  /** Resolves when the listed version differs from `version`, or after `ms`. */
  waitForChange(version: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (version !== this.ver || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const ctl = new AbortController();
      const done = () => {
        this.waiters.delete(done);
        ctl.abort("answered"); // a reason spares building a DOMException
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
      this.clock.sleep(ms, ctl.signal).then(done, () => {});
    });
  }

  private record(version: number, until: number): void {
    const existing = this.offers.find((o) => o.version === version);
    if (existing) existing.until = Math.max(existing.until, until);
    else this.offers.push({ version, ids: this.listed.map((s) => s.id), until, sorted: true });
  }

  private prune(now: number): void {
    if (this.offers.some((o) => o.until + HELD_MARGIN_MS <= now)) this.offers = this.offers.filter((o) => o.until + HELD_MARGIN_MS > now);
  }
}

/** Whether two sorted listings offer the same streams under the same url and name. */
function sameListing(a: readonly Stream[], b: readonly Stream[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y && (x.id !== y.id || x.url !== y.url || x.name !== y.name)) return false;
  }
  return true;
}
