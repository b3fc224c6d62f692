/**
 * What the agent offers its worker, decided from its latest reads. PURE: no I/O, no
 * clock; the caller passes `now` and applies the returned state.
 *
 * Rules (the agent half of the safety model; the worker half is agent/serving.ts):
 * 1. Resync: after a freeze or a lapsed lease (see beginResync) the offer stays empty
 *    until BOTH the own rows and the membership view were read after the resync began.
 * 2. Row trust: rows are served only once a leader wrote them for this agent's current
 *    session (process and resync generation): that leader had then seen it come back and
 *    what everybody holds. Switching to hashing distrusts them again.
 * 3. Mode: resolveMode (agent/mode.ts), fed with "coordination ok" = the last heartbeat
 *    was confirmed and the view is fresh; without it no switch happens.
 * 4. Acquisitions: reconcile (agent/reconcile.ts) never takes a stream another live
 *    member holds; a hashing agent that only waits for a ready leader takes nothing new.
 * 5. Released streams (the older API's POST /streams/release) are never offered again
 *    until the leader has acted on them (they left this member's rows, revoking included).
 * 6. Leaving (SIGTERM drain): hashed offers nothing; orchestrated keeps only what is
 *    still in its active rows.
 * It does not decide the worker's lease: only confirmed heartbeats renew it.
 */
import type { ClusterFlag, Snapshot } from "../shared/membership.js";
import type { OwnAssignment } from "../shared/store.js";
import type { HashingPolicy } from "../shared/placement/hash-owners.js";
import type { LeaderInfo, Mode, Stream, StreamId } from "../shared/types.js";
import type { HashedView } from "./hashed-view.js";
import { resolveMode } from "./mode.js";
import { reconcile } from "./reconcile.js";

export interface OfferState {
  readonly mode: Mode;
  readonly modeReason: string;
  /** Set while withdrawn for a resync: the time it began. */
  readonly resyncSince: number | undefined;
  /** How many resyncs this process made: part of the session the leader stamps rows for. */
  readonly resyncs: number;
  /**
   * Rows are trusted only once written after this gate: the version seen at the first
   * read, or when the agent last switched to hashing.
   */
  readonly rowsGate: number | undefined;
  readonly rowsTrusted: boolean;
  readonly lastLeaderSeenAt: number;
  /** What reconcile remembers of the hashed view (agent/hashed-view.ts). */
  readonly hashedView?: HashedView;
}

export function initialOfferState(now: number): OfferState {
  return { mode: "orchestrated", modeReason: "starting", resyncSince: undefined, resyncs: 0, rowsGate: undefined, rowsTrusted: false, lastLeaderSeenAt: now };
}

/** The session the leader stamps rows for: the process's, plus the resync generation. */
export function sessionOf(processSession: string, s: OfferState): string {
  return s.resyncs === 0 ? processSession : `${processSession}.${s.resyncs}`;
}

/** Withdraws everything until rows and membership are re-read (rule 1). */
export function beginResync(s: OfferState, now: number): OfferState {
  return { ...s, resyncSince: now, resyncs: s.resyncSince === undefined ? s.resyncs + 1 : s.resyncs, rowsTrusted: false, hashedView: undefined };
}

export interface OfferInput {
  readonly now: number;
  readonly me: string;
  readonly processSession: string;
  readonly useOrchestrator: boolean;
  readonly fallbackGraceMs: number;
  readonly hashSettleMs: number;
  readonly maxViewAgeMs: number;
  /** IMBALANCE_THRESHOLD and MAX_STREAM_DIFFERENCE, for hashed ownership. */
  readonly hashPolicy: HashingPolicy;
  readonly heartbeatOk: boolean;
  readonly snapshot: Snapshot | undefined;
  readonly own: OwnAssignment | undefined;
  /** Local time the read that produced `own` began. */
  readonly ownLoadedAt: number;
  readonly flag: ClusterFlag | undefined;
  readonly leader: LeaderInfo | undefined;
  readonly leaving: boolean;
  readonly listed: readonly Stream[];
  readonly catalog: readonly Stream[] | undefined;
  readonly legacy: ReadonlyMap<StreamId, string> | undefined;
  readonly released: ReadonlySet<StreamId>;
}

export interface OfferDecision {
  readonly state: OfferState;
  /** The new offer; undefined leaves the current one as it is (withdrawn for a resync). */
  readonly streams: readonly Stream[] | undefined;
  /** The resync finished in this step. */
  readonly resynced: boolean;
  readonly modeChange: { readonly from: Mode; readonly to: Mode; readonly why: string } | undefined;
  /** Releases the leader has acted on: forget them. */
  readonly forgetReleased: readonly StreamId[];
  /** Wanted streams still held elsewhere or settling. */
  readonly blocked: number;
}

export function decideOffer(s0: OfferState, i: OfferInput): OfferDecision {
  const none = { streams: undefined, resynced: false, modeChange: undefined, forgetReleased: [], blocked: 0 };
  const snap = i.snapshot;
  let s = s0;
  let resynced = false;
  if (s.resyncSince !== undefined) {
    if (!(i.ownLoadedAt > s.resyncSince && snap && snap.at > s.resyncSince)) return { ...none, state: s };
    s = { ...s, resyncSince: undefined };
    resynced = true;
  }
  const coordinationOk = i.heartbeatOk && !!snap && i.now - snap.at <= i.maxViewAgeMs;
  // Cannot tell "no leader" from "cannot see it": the grace period starts again.
  if (!coordinationOk) s = { ...s, lastLeaderSeenAt: i.now };
  const decision = resolveMode({
    coordinationOk,
    now: i.now,
    current: s.mode,
    useOrchestrator: i.useOrchestrator,
    flag: i.flag,
    leader: i.leader,
    lastLeaderSeenAt: s.lastLeaderSeenAt,
    fallbackGraceMs: i.fallbackGraceMs,
    own: i.own,
    versionAtHashed: s.rowsGate ?? Number.MAX_SAFE_INTEGER,
  });
  if (decision.leaderSeen) s = { ...s, lastLeaderSeenAt: i.now };
  let modeChange: OfferDecision["modeChange"];
  if (decision.mode !== s.mode) {
    modeChange = { from: s.mode, to: decision.mode, why: decision.reason };
    if (decision.mode === "hashed") s = { ...s, rowsGate: i.own?.version ?? 0, rowsTrusted: false };
    s = { ...s, mode: decision.mode };
  }
  s = { ...s, modeReason: decision.reason };
  // While hashing for a reason that still holds, rows written now are not an invitation
  // back: only a version written after the leader saw us want orchestration counts.
  if (s.mode === "hashed" && !(i.flag?.mode !== "hashed" && i.useOrchestrator && i.leader?.ready)) s = { ...s, rowsGate: i.own?.version ?? 0 };
  if (i.own && s.rowsGate === undefined) s = { ...s, rowsGate: i.own.version };
  if (!s.rowsTrusted && i.own?.stampedSession === sessionOf(i.processSession, s)) s = { ...s, rowsTrusted: true };

  const active = new Set((i.own?.active ?? []).map((r) => r.id));
  if (i.leaving) {
    const streams = s.mode === "hashed" ? [] : i.listed.filter((x) => active.has(x.id));
    return { state: s, streams, resynced, modeChange, forgetReleased: [], blocked: 0 };
  }
  const revoking = new Set(i.own?.revoking ?? []);
  const forgetReleased = [...i.released].filter((id) => !active.has(id) && !revoking.has(id));
  const next = reconcile({
    me: i.me,
    now: i.now,
    mode: s.mode,
    listed: i.listed,
    rows: s.rowsTrusted ? i.own?.active : undefined,
    catalog: i.catalog,
    takeNew: s.mode !== "hashed" || !i.leader?.ready || i.flag?.mode === "hashed" || !i.useOrchestrator,
    legacy: i.legacy,
    snapshot: snap,
    hashSettleMs: i.hashSettleMs,
    maxViewAgeMs: i.maxViewAgeMs,
    hashPolicy: i.hashPolicy,
    hashedView: s.hashedView,
    watchHashed: !i.leader?.ready || i.flag?.mode === "hashed" || !i.useOrchestrator,
  });
  s = { ...s, hashedView: next.hashedView };
  const keepOut = new Set([...i.released].filter((id) => !forgetReleased.includes(id)));
  const streams = keepOut.size > 0 ? next.streams.filter((x) => !keepOut.has(x.id)) : next.streams;
  return { state: s, streams, resynced, modeChange, forgetReleased, blocked: next.blocked.length };
}
