/**
 * Which mode an agent serves in. PURE.
 *
 * - hashed when its own USE_ORCHESTRATOR is false, or the cluster flag says hashed;
 * - hashed when no ready leader has been seen for FALLBACK_GRACE;
 * - orchestrated when a ready leader exists AND that leader has written this member's
 *   rows (same epoch; and, coming back from hashing, a newer version than when it left):
 *   until then the rows could be a previous leader's and conflict with what hashing
 *   members hold;
 * - otherwise it stays in the mode it is in (no flapping on a missing read); in
 *   particular nothing switches while Redis is unreachable.
 */
import type { ClusterFlag } from "../shared/membership.js";
import type { LeaderInfo, Mode } from "../shared/types.js";

export interface ModeInput {
  readonly now: number;
  readonly current: Mode;
  readonly useOrchestrator: boolean;
  readonly flag: ClusterFlag | undefined;
  readonly leader: LeaderInfo | undefined;
  readonly lastLeaderSeenAt: number;
  readonly fallbackGraceMs: number;
  /** This member's rows as last loaded: the epoch and version that wrote them. */
  readonly own: { readonly epoch: number; readonly version: number } | undefined;
  /** The row version when this agent last switched to hashed (0 if never). */
  readonly versionAtHashed: number;
  /**
   * Whether this agent can see the cluster right now (Redis answers, the view is fresh).
   * Without it no switch happens: an agent cut off from Redis cannot tell "no leader"
   * from "I cannot see the leader", and hashing needs a fresh view anyway.
   */
  readonly coordinationOk: boolean;
}

export interface ModeDecision {
  readonly mode: Mode;
  readonly reason: string;
  readonly leaderSeen: boolean;
}

export function resolveMode(i: ModeInput): ModeDecision {
  const leaderSeen = !!i.leader?.ready;
  if (!i.useOrchestrator) return { mode: "hashed", reason: "USE_ORCHESTRATOR=false", leaderSeen };
  if (i.flag?.mode === "hashed") return { mode: "hashed", reason: "cluster flag is hashed", leaderSeen };
  if (!i.coordinationOk) return { mode: i.current, reason: "cannot see the cluster (Redis unreachable); keeping the current mode", leaderSeen: false };
  if (leaderSeen) {
    const ownIsCurrent = !!i.own && i.own.epoch === i.leader!.epoch && (i.current === "orchestrated" || i.own.version > i.versionAtHashed);
    if (ownIsCurrent) return { mode: "orchestrated", reason: "following leader", leaderSeen };
    return { mode: i.current, reason: "waiting for the leader to write this member's rows", leaderSeen };
  }
  if (i.now - i.lastLeaderSeenAt >= i.fallbackGraceMs) return { mode: "hashed", reason: "no leader for the grace period", leaderSeen };
  return { mode: i.current, reason: "no leader yet, within the grace period", leaderSeen };
}

/** The newer of two flags (by version). */
export function newerFlag(a: ClusterFlag | undefined, b: ClusterFlag | undefined): ClusterFlag | undefined {
  if (!a) return b;
  if (!b) return a;
  return b.version > a.version ? b : a;
}
