/**
 * What one agent believes about the cluster, from what it last read: its own rows (the
 * own-rows read), its heartbeat's reply (the leader info judged live, the flag mirror)
 * and the tracker's view. ONE home for "who leads, as far as this agent knows" and for the
 * two rules that follow from it: whether the agent reads the whole membership (a decider)
 * and whether a follower tries the lease.
 *
 * Guarantees: the newer of the heartbeat reply and the tracker's view wins for the leader;
 * the newest flag version of the three sources wins for the mode. Does not: read anything
 * itself (the agent's loops feed it), nor decide the mode (agent/mode.ts).
 */
import type { Clock } from "../shared/clock.js";
import type { ClusterFlag, Snapshot } from "../shared/membership.js";
import type { OwnAssignment } from "../shared/store.js";
import type { LeaderInfo, Mode } from "../shared/types.js";
import { newerFlag } from "./mode.js";

export interface BeliefsDeps {
  readonly clock: Clock;
  /** The tracker's latest view. */
  readonly view: () => Snapshot | undefined;
  /** A reply older than this says nothing about a live leader (the maximum view age). */
  readonly maxViewAgeMs: number;
  /** How long without a ready leader in sight before an orchestrated agent reads the whole membership (shared/timings.ts wholeViewLeaderlessMs). */
  readonly wholeViewLeaderlessMs: number;
}

export class Beliefs {
  /** This member's rows as last read, and when that read started. */
  own: OwnAssignment | undefined;
  ownLoadedAt = -Infinity;
  private lastReply: { at: number; leader: LeaderInfo | undefined; flag: ClusterFlag | undefined } | undefined;

  constructor(private readonly d: BeliefsDeps) {}

  /** A heartbeat reply arrived (its leader info is already judged live or absent). */
  observeReply(leader: LeaderInfo | undefined, flag: ClusterFlag | undefined): void {
    this.lastReply = { at: this.d.clock.now(), leader, flag };
  }

  /** Our own rows were read (the read started at `startedAt`). */
  observeOwn(own: OwnAssignment, startedAt: number): void {
    this.own = own;
    this.ownLoadedAt = startedAt;
  }

  /** What this agent last heard about the leader (from its own heartbeat or the tracker). */
  get leaderInfo(): LeaderInfo | undefined {
    const snap = this.d.view();
    if (this.lastReply && (!snap || this.lastReply.at >= snap.at)) return this.lastReply.leader;
    return snap?.leader;
  }

  get flag(): ClusterFlag | undefined {
    const own = this.own ? { mode: this.own.mode, version: this.own.modeVersion } : undefined;
    return newerFlag(newerFlag(own, this.d.view()?.flag), this.lastReply?.flag);
  }

  /**
   * Whether this agent reads the whole membership: the leader, hashing agents, and agents
   * that may start hashing soon: no ready leader in sight since `lastLeaderSeenAt` (the
   * time agent/mode.ts counts FALLBACK_GRACE from) for wholeViewLeaderlessMs, so that
   * their view has settled (every member watched for a timeout, a death's streams settled
   * on their hashing owner) when the grace ends. A leader change that completes sooner
   * leaves the followers watching the leader alone.
   */
  decides(o: { readonly leading: boolean; readonly mode: Mode; readonly useOrchestrator: boolean; readonly lastLeaderSeenAt: number }): boolean {
    if (o.leading || o.mode === "hashed" || !o.useOrchestrator || this.flag?.mode === "hashed") return true;
    return !this.leaderInfo?.ready && this.d.clock.now() - o.lastLeaderSeenAt >= this.d.wholeViewLeaderlessMs;
  }

  /** A follower tries the lease only while no recent heartbeat reply names a live leader (leader/elector.ts says why that is enough). */
  mayAcquire(): boolean {
    return this.acquireInMs() === 0;
  }

  /**
   * 0 while a follower may try the lease; else how long until it may by time alone (the
   * reply naming a leader grows too old to vouch for it). Only a new reply changes it
   * sooner: the agent pokes the elector at each one.
   */
  acquireInMs(): number {
    if (!this.lastReply?.leader) return 0;
    const left = this.lastReply.at + this.d.maxViewAgeMs - this.d.clock.now();
    return left >= 0 ? left + 1 : 0;
  }
}
