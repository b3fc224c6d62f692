/**
 * The inputs of a plan, read and assembled in ONE place for the leader's tick and for the
 * dry run behind POST /rebalance?dry_run=1, so that a forced dry run computes exactly the
 * plan the next forced tick would, given the same state: the same membership view, rows,
 * instances, catalog, legacy members and session stamps.
 */
import type { CatalogCache } from "../shared/catalog-cache.js";
import type { Config } from "../shared/config.js";
import type { LegacyView } from "../shared/legacy.js";
import { liveIds } from "../shared/member-state.js";
import type { MembershipTracker, Snapshot } from "../shared/membership.js";
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
}

export interface SourceReaders {
  readonly tracker: Pick<MembershipTracker, "refresh">;
  readonly store: Pick<LeaderStore, "load">;
  readonly catalog: CatalogCache;
  readonly catalogRefreshMs: number;
  readonly legacy: LegacyView;
}

/**
 * Reads the sources: the membership (Redis, now), the rows and instances (Postgres, now),
 * the catalog and the legacy members (cached). Throws when one cannot be read.
 */
export async function readPlanSources(r: SourceReaders): Promise<PlanSources> {
  const snapshot = await r.tracker.refresh();
  const state = await r.store.load();
  const catalog = await r.catalog.get(r.catalogRefreshMs);
  if (!catalog) throw new Error(r.catalog.lastError ?? "catalog not readable yet");
  const { owned } = await r.legacy.read(catalog.streams, liveIds(snapshot.members.values()));
  return { snapshot, state, catalog: catalog.streams, legacy: owned };
}

/** What the leader adds to the sources. */
export interface LeaderTerms {
  readonly epoch: number;
  readonly policy: AssignPolicy;
  readonly requireWorker: boolean;
  /** Member → the session whose rows this leader's term has written (undefined off the leader). */
  readonly stamped?: ReadonlyMap<string, string>;
}

export function buildPlanInput(src: PlanSources, t: LeaderTerms): PlanInput {
  return {
    epoch: t.epoch,
    flag: src.state.flag.mode,
    catalog: src.catalog,
    rows: src.state.rows,
    instances: src.state.instances,
    members: src.snapshot.members,
    legacy: src.legacy,
    stamped: t.stamped,
    policy: t.policy,
    requireWorker: t.requireWorker,
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
