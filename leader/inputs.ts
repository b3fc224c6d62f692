/**
 * The inputs of a plan, read and assembled in ONE place for the leader's tick and for the
 * dry run behind POST /rebalance?dry_run=1, so that a forced dry run computes exactly the
 * plan the next forced tick would, given the same state: the same membership view, rows,
 * instances, catalog, legacy members and session stamps. Also the rebalance policy: the
 * thresholds, and what lets a rebalance skip the cooldown (`rebalanceTrigger`).
 */
import type { CatalogCache } from "../shared/catalog-cache.js";
import type { Config, StreamHealthSettings } from "../shared/config.js";
import type { HealthView, StreamHealthStore } from "../shared/stream-health-store.js";
import type { LegacyView } from "../shared/legacy.js";
import { isLive, liveIds, placementCapacity } from "../shared/member-state.js";
import type { MemberView, MembershipTracker, Snapshot } from "../shared/membership.js";
import type { AssignPolicy } from "../shared/placement/assignor.js";
import type { PlanInput } from "../shared/placement/plan.js";
import type { MoveReason, Stream, StreamId } from "../shared/types.js";
import type { LeaderState, LeaderStore } from "./store.js";

/** Everything a plan is computed from that lives outside the leader's memory. */
export interface PlanSources {
  readonly snapshot: Snapshot;
  readonly state: LeaderState;
  readonly catalog: readonly Stream[];
  /** Streams of live legacy members (none unless LEGACY_TOTAL_SERVERS is set). */
  readonly legacy: ReadonlyMap<StreamId, string>;
  /** Stream health: open failure episodes, quarantines, the failure memory. */
  readonly health: HealthView;
}

export interface SourceReaders {
  readonly tracker: Pick<MembershipTracker, "refresh">;
  readonly store: Pick<LeaderStore, "load">;
  readonly catalog: CatalogCache;
  readonly catalogRefreshMs: number;
  readonly legacy: LegacyView;
  readonly health: Pick<StreamHealthStore, "readForPlan">;
  readonly healthSettings: StreamHealthSettings;
}

/**
 * Reads the sources: the membership (Redis, now), then the rows, instances and flag and
 * the stream health (Postgres, now, both at once), the catalog (cached, refreshed in the
 * background every catalogRefreshMs) and the legacy members (cached). The membership is read first: every member it shows alive registered
 * before the instances are read. Throws when one cannot be read.
 */
export async function readPlanSources(r: SourceReaders): Promise<PlanSources> {
  const snapshot = await r.tracker.refresh();
  const [state, health] = await Promise.all([r.store.load(), r.health.readForPlan(r.healthSettings.failureMemoryMs)]);
  // The version check (an O(catalog) query) runs beside the ticks, not inside one: a
  // change is planned from the tick after the refresh that saw it.
  const catalog = await r.catalog.get(r.catalogRefreshMs, { background: true });
  if (!catalog) throw new Error(r.catalog.lastError ?? "catalog not readable yet");
  const { owned } = await r.legacy.read(catalog.streams, liveIds(snapshot.members.values()));
  return { snapshot, state, catalog: catalog.streams, legacy: owned, health };
}

/** What the leader adds to the sources. */
export interface LeaderTerms {
  readonly epoch: number;
  readonly policy: AssignPolicy;
  readonly requireWorker: boolean;
  /** Member → the session whose rows this leader's term has written (undefined off the leader). */
  readonly stamped?: ReadonlyMap<string, string>;
  /** See PlanInput.honourPgCut. */
  readonly honourPgCut?: boolean;
  /** See PlanInput.hashSettled. */
  readonly hashSettled?: boolean;
  readonly healthSettings: StreamHealthSettings;
  /** Failure-driven changes this plan may make (0 for a dry run: it predicts placement, not failovers). */
  readonly healthBudget: number;
}

export function buildPlanInput(src: PlanSources, t: LeaderTerms): PlanInput {
  return {
    epoch: t.epoch,
    flag: src.state.flag.mode,
    catalog: src.catalog,
    rows: src.state.rows,
    rowsJournal: src.state.rowsJournal,
    instances: src.state.instances,
    members: src.snapshot.members,
    legacy: src.legacy,
    stamped: t.stamped,
    policy: t.policy,
    requireWorker: t.requireWorker,
    honourPgCut: t.honourPgCut,
    hashSettled: t.hashSettled,
    health: { view: src.health, settings: t.healthSettings, budget: t.healthBudget },
  };
}

/**
 * The rebalance policy from the settings. `force`: rebalance to the targets whatever the
 * imbalance (an operator's POST /rebalance, or its dry run).
 */
export function rebalancePolicy(
  config: Pick<Config, "imbalanceThreshold" | "maxStreamDifference">,
  o: { readonly rebalanceAllowed: boolean; readonly force: boolean; readonly rebalanceReason?: MoveReason },
): AssignPolicy {
  return {
    imbalanceThreshold: config.imbalanceThreshold,
    maxStreamDifference: config.maxStreamDifference,
    rebalanceAllowed: o.rebalanceAllowed,
    force: o.force,
    rebalanceReason: o.rebalanceReason,
  };
}

/**
 * Why a rebalance may skip the cooldown this tick (PURE): a member joined (it could hold
 * nothing before: new, back, or its worker just came up; or it holds nothing while there
 * are streams to share, e.g. it came back across a leader change), or a member's capacity
 * changed. Undefined: only the cooldown lets a rebalance happen. `owned`: rows per member
 * once the handoffs complete (leader/memo.ts RowsSummary.owned).
 */
export function rebalanceTrigger(
  members: Iterable<MemberView>,
  lastPool: ReadonlyMap<string, number>,
  owned: ReadonlyMap<string, number>,
  streams: number,
  requireWorker: boolean,
): MoveReason | undefined {
  let reason: MoveReason | undefined;
  for (const m of members) {
    // A member cut from PostgreSQL is out of the placement until it is back (plan.ts).
    // A degraded member's pool shrinks to what it keeps (health-rules.ts): not a capacity change.
    if (!isLive(m) || m.hb.draining || m.hb.leaving || m.hb.pgCut === true || m.hb.degraded !== undefined) continue;
    // Members serving by hashing own no rows by design: they never count as starving.
    if (!m.hb.useOrchestrator || m.hb.mode === "hashed") continue;
    const capacity = placementCapacity(m, requireWorker);
    if (capacity <= 0) continue;
    const before = lastPool.get(m.id) ?? 0;
    if ((before === 0 && lastPool.size > 0) || (streams > 0 && (owned.get(m.id) ?? 0) === 0)) reason = "join";
    else if (before !== 0 && before !== capacity) reason ??= "capacity";
  }
  return reason;
}
