/**
 * What an operator can ask of any agent, for the whole cluster: read the cluster's state
 * (with stream health, one stream's detail and the health samples), flip the mode flag,
 * drain or undrain an instance, ask for a rebalance or a dry run, retry a stream.
 *
 * Guarantees:
 * - PostgreSQL is the record of the flag and the drain marks; the Redis mirror and the
 *   nudges only make them take effect sooner (the leader re-publishes from PostgreSQL).
 * - Reads go through the operator pool, and concurrent reads share one query in flight,
 *   so a burst of status calls never queues in front of the agent's own work.
 * - A dry run plans from the same inputs as the leader's tick and changes nothing.
 * It does not authenticate (agent/http/require-admin.ts) nor validate input (the routes).
 */
import type { CatalogCache } from "../shared/catalog-cache.js";
import type { Clock } from "../shared/clock.js";
import type { Config } from "../shared/config.js";
import type { Sql } from "../shared/db.js";
import type { LegacyView } from "../shared/legacy.js";
import { isLive, liveIds } from "../shared/member-state.js";
import type { Logger } from "../shared/logger.js";
import type { MembershipTracker } from "../shared/membership.js";
import { readShared, readStreamMoves, type SharedRows } from "../shared/status-rows.js";
import { streamDetail, type StreamDetailBody } from "../shared/status-health.js";
import { StreamHealthStore, type HealthRecord, type HealthSample } from "../shared/stream-health-store.js";
import { clusterView, type ClusterView } from "../shared/status.js";
import type { Store } from "../shared/store.js";
import type { LeaderInfo, Mode, Nudge, StreamId } from "../shared/types.js";
import type { Plan } from "../shared/placement/plan.js";

export interface OperatorDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly store: Store;
  /** The operator's own small pool (reads and the few operator writes). */
  readonly opsSql: Sql;
  readonly tracker: MembershipTracker;
  readonly catalog: CatalogCache;
  readonly legacy: LegacyView;
  leaderInfo(): LeaderInfo | undefined;
  /** The leader's own planning path, fed from the shared state, changing nothing. */
  dryRun(epoch: number): Promise<Plan>;
  /** Rebalance now if this agent leads; false when the request must travel by nudge. */
  rebalanceHere(): boolean;
  publish(n: Nudge): void;
  publishMode(flag: { mode: Mode; version: number }): Promise<void>;
}

/** How long an agent asked for the cluster view keeps reading the whole membership. */
const WHOLE_VIEW_HOLD_MS = 60_000;

export class OperatorActions {
  private readonly inflight = new Map<number, Promise<SharedRows>>();
  private healthStore: StreamHealthStore | undefined;
  private healthInflight: Promise<Map<StreamId, HealthRecord>> | undefined;

  constructor(private readonly d: OperatorDeps) {}

  /** The cluster joined from PostgreSQL, this agent's membership view and the catalog. */
  async view(opts: { events?: number } = {}): Promise<ClusterView> {
    const { tracker, catalog, config } = this.d;
    // Any agent answers for the whole cluster: a follower reads everyone for a while.
    const snapshot = await tracker.refreshWhole(WHOLE_VIEW_HOLD_MS, { reuse: true });
    const [rows, cat, health] = await Promise.all([this.sharedRows(opts.events ?? 50), catalog.get(config.catalogRefreshMs), this.healthRecords()]);
    const legacy = this.d.legacy.enabled && cat ? await this.d.legacy.read(cat.streams, liveIds(snapshot.members.values())) : undefined;
    return clusterView({ rows, snapshot, catalog: cat, catalogError: catalog.lastError, leader: this.d.leaderInfo(), nowWall: this.d.clock.wall(), legacy, health });
  }

  /**
   * One stream for GET /streams/:id: where it is, its health, its failure memory and its
   * recent moves. Undefined when the catalog has no active stream of that id.
   */
  async stream(id: StreamId): Promise<StreamDetailBody | undefined> {
    const view = await this.view({ events: 0 });
    const cat = await this.d.catalog.get(this.d.config.catalogRefreshMs);
    const stream = cat?.streams.find((s) => s.id === id);
    if (!stream) return undefined;
    const [{ record, failures }, moves] = await Promise.all([this.health.detail(id, this.d.config.streamHealth.failureMemoryMs), readStreamMoves(this.d.opsSql, this.d.config.schema, id, 20)]);
    const row = (await this.sharedRows(0)).assignments.find((a) => a.stream === id);
    const owner = view.ownerOf(id);
    const hashedOwner = owner !== null && view.instances.find((i) => i.instance_id === owner)?.mode === "hashed";
    const state = owner === null ? "unassigned" : view.instances.find((i) => i.instance_id === owner)?.status === "legacy" ? "legacy" : hashedOwner && !row ? "hashed" : row?.state === "revoking" ? "revoking" : "assigned";
    const snapshot = this.d.tracker.latest;
    const liveLabels = snapshot ? [...snapshot.members.values()].filter(isLive).map((m) => m.hb.labels) : [];
    return streamDetail({ stream, owner, state, record, failures, moves, liveLabels });
  }

  /** An operator's retry of a stream (quarantined or not): its quarantine and failure memory are forgotten, and the leader replans now. */
  async retryStream(id: StreamId): Promise<boolean> {
    const cat = await this.d.catalog.get(this.d.config.catalogRefreshMs);
    if (!cat?.streams.some((s) => s.id === id)) return false;
    await this.health.retry(id);
    this.requestRebalanceTick();
    this.d.logger.info({ category: "STREAM", stream: id }, "stream retry requested: quarantine and failure memory forgotten");
    return true;
  }

  healthSamples(minutes: number): Promise<HealthSample[]> {
    return this.health.samples(minutes);
  }

  private get health(): StreamHealthStore {
    return (this.healthStore ??= new StreamHealthStore(this.d.opsSql, this.d.config.schema));
  }

  private async healthRecords(): Promise<Map<StreamId, HealthRecord>> {
    let p = this.healthInflight;
    if (!p) {
      p = this.health.readAll().finally(() => (this.healthInflight = undefined));
      this.healthInflight = p;
    }
    return p;
  }

  /** The leader ticks soon (a nudge travels to it wherever it runs); no forced rebalance. */
  private requestRebalanceTick(): void {
    this.d.publish({ t: "ack", id: "operator" });
  }

  clusterFlag(): Promise<{ mode: Mode; version: number }> {
    return this.d.store.clusterFlag();
  }

  /** Flips the cluster flag. */
  async setMode(mode: Mode, by: string): Promise<{ mode: Mode; version: number; changed: boolean }> {
    const r = await this.d.store.setMode(mode, by);
    await this.d.publishMode({ mode: r.mode, version: r.version }).catch(() => {
      // The leader re-publishes the flag from PostgreSQL on every tick.
    });
    this.d.publish({ t: "mode", mode: r.mode });
    this.d.logger.info({ category: "INSTANCE", mode: r.mode, by, changed: r.changed }, `cluster mode set to ${r.mode}`);
    return r;
  }

  /** Drain or undrain any instance. False for an unknown instance. */
  async setDraining(id: string, draining: boolean): Promise<boolean> {
    const ok = await this.d.store.setDraining(id, draining);
    if (ok) {
      this.d.publish({ t: "drain", id });
      this.d.logger.info({ category: "INSTANCE", target: id, draining }, draining ? `drain requested for ${id}` : `undrain requested for ${id}`);
    }
    return ok;
  }

  /** Asks the leader, wherever it runs, to rebalance to the targets now. */
  requestRebalance(): void {
    if (!this.d.rebalanceHere()) this.d.publish({ t: "rebalance" });
  }

  /**
   * What the leader would do right now if asked to rebalance, changing nothing: the
   * leader's own input builder (leader/inputs.ts), so the dry run predicts the next tick.
   */
  dryRunRebalance(): Promise<Plan> {
    return this.d.dryRun(this.d.leaderInfo()?.epoch ?? 0);
  }

  private sharedRows(events: number): Promise<SharedRows> {
    let p = this.inflight.get(events);
    if (!p) {
      p = readShared(this.d.opsSql, this.d.config.schema, { events }).finally(() => this.inflight.delete(events));
      this.inflight.set(events, p);
    }
    return p;
  }
}
