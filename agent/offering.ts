/**
 * Keeps the worker's offer in step with what this agent last read: after every read (the
 * membership, its own rows, the catalog, a release), recompute the mode and the offered
 * set with agent/offer.ts (PURE) and apply the decision to the serving set.
 *
 * Guarantees: one recomputation at a time, from the latest reads; a required resync
 * withdraws every stream at once and keeps them withdrawn until offer.ts says the reads
 * are fresh again; streams blocked by a handoff in progress trigger at most one extra
 * membership read every VIEW_REFRESH_MIN_MS. Does not: decide anything itself (offer.ts
 * does), read PostgreSQL or Redis other than the membership, or run after the agent
 * closes.
 */
import type { CatalogCache } from "../shared/catalog-cache.js";
import type { Clock } from "../shared/clock.js";
import type { Config } from "../shared/config.js";
import type { LegacyView } from "../shared/legacy.js";
import type { Logger } from "../shared/logger.js";
import { liveIds } from "../shared/member-state.js";
import type { MembershipTracker, Snapshot } from "../shared/membership.js";
import type { Metrics } from "../shared/metrics.js";
import { beginResync, decideOffer, initialOfferState, type OfferInput, type OfferState } from "./offer.js";
import type { WorkerLink } from "./worker-link.js";

/** The shortest pause between two extra membership reads for blocked streams. */
const VIEW_REFRESH_MIN_MS = 100;

/** What the agent itself knows, read at every recomputation. */
export type AgentReads = Pick<OfferInput, "heartbeatOk" | "own" | "ownLoadedAt" | "flag" | "leader" | "leaving">;

export interface OfferingDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** This process's session. */
  readonly session: string;
  readonly worker: Pick<WorkerLink, "serving" | "released" | "forgetReleased">;
  readonly tracker: Pick<MembershipTracker, "latest" | "refresh">;
  readonly catalog: Pick<CatalogCache, "current">;
  readonly legacy: Pick<LegacyView, "owned">;
  readonly reads: () => AgentReads;
  readonly wakeHeartbeat: () => void;
  readonly wakeOwn: () => void;
  /** Aborted when the agent closes: nothing is recomputed after. */
  readonly signal: AbortSignal;
}

export class Offering {
  private offerState: OfferState;
  private viewRefreshPending = false;
  private lastViewRefreshAt = -Infinity;

  constructor(private readonly d: OfferingDeps) {
    this.offerState = initialOfferState(d.clock.now());
  }

  get state(): OfferState {
    return this.offerState;
  }

  get resyncing(): boolean {
    return this.offerState.resyncSince !== undefined;
  }

  requireResync(now: number, why: string): void {
    if (this.offerState.resyncSince === undefined) {
      this.d.logger.warn({ category: "INSTANCE", why }, "withdrawing every stream until the assignment and membership are re-read");
    }
    this.offerState = beginResync(this.offerState, now);
    this.d.worker.serving.setListed([]);
    this.d.worker.serving.expire();
    this.d.wakeOwn();
  }

  /** Recomputes the mode and the offered set from the latest reads (agent/offer.ts). */
  afterChange(): void {
    if (this.d.signal.aborted) return;
    const { config, worker, metrics, logger } = this.d;
    const now = this.d.clock.now();
    const snap = this.d.tracker.latest;
    const serving = worker.serving;
    const agent = this.d.reads();
    const d = decideOffer(this.offerState, {
      now,
      me: config.instanceId,
      processSession: this.d.session,
      useOrchestrator: config.useOrchestrator,
      fallbackGraceMs: config.fallbackGraceMs,
      hashSettleMs: config.hashSettleMs,
      maxViewAgeMs: config.timings.maxViewAgeMs,
      hashPolicy: { imbalanceThreshold: config.imbalanceThreshold, maxStreamDifference: config.maxStreamDifference },
      heartbeatOk: agent.heartbeatOk,
      snapshot: snap,
      own: agent.own,
      ownLoadedAt: agent.ownLoadedAt,
      flag: agent.flag,
      leader: agent.leader,
      leaving: agent.leaving,
      listed: serving.streams,
      catalog: this.d.catalog.current?.streams,
      legacy: this.legacyView(snap),
      released: worker.released,
    });
    this.offerState = d.state;
    if (d.resynced) {
      logger.info({ category: "INSTANCE" }, "resynced; serving again after the next confirmed heartbeat");
      this.d.wakeHeartbeat();
    }
    if (d.modeChange) {
      logger.info({ category: "INSTANCE", from: d.modeChange.from, to: d.modeChange.to, why: d.modeChange.why }, `mode: ${d.modeChange.to}`);
      this.d.wakeHeartbeat();
    }
    worker.forgetReleased(d.forgetReleased);
    if (d.streams === undefined) return;
    const before = serving.streams.length;
    if (serving.setListed(d.streams)) {
      logger.debug({ category: "STREAM", before, after: d.streams.length, blocked: d.blocked }, "offer changed");
      this.d.wakeHeartbeat();
    }
    if (agent.leaving) return;
    metrics.streamsServed.set(serving.streams.length);
    for (const m of ["orchestrated", "hashed"] as const) metrics.mode.set({ mode: m }, m === this.offerState.mode ? 1 : 0);
    // Wanted streams still held elsewhere: the holder may have let go since our last read
    // of the membership (a handoff in progress). Look again now instead of at the next tick.
    if (d.blocked > 0 && snap && now - snap.at > 50) this.refreshViewSoon();
  }

  /** Legacy members' streams, as this agent last read them (hashing leaves them alone). */
  private legacyView(snap: Snapshot | undefined): Map<string, string> | undefined {
    const catalog = this.d.catalog.current;
    if (!catalog) return undefined;
    return this.d.legacy.owned(catalog.streams, liveIds(snap?.members.values() ?? []));
  }

  /** One extra membership read, at most every VIEW_REFRESH_MIN_MS, followed by a recomputation. */
  private refreshViewSoon(): void {
    if (this.viewRefreshPending || this.d.signal.aborted) return;
    this.viewRefreshPending = true;
    const clock = this.d.clock;
    void clock
      .sleep(Math.max(0, VIEW_REFRESH_MIN_MS - (clock.now() - this.lastViewRefreshAt)), this.d.signal)
      .then(() => this.d.tracker.refresh())
      .then(
        () => {
          this.lastViewRefreshAt = clock.now();
          this.viewRefreshPending = false;
          this.afterChange();
        },
        () => {
          // Redis unreachable or closing: the regular tracker loop carries on.
          this.viewRefreshPending = false;
        },
      );
  }
}
