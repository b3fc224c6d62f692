/**
 * The cluster channel's subscriber, and what an agent does with a nudge from it: re-read
 * its rows, re-read the membership, or (while leading) tick or rebalance sooner.
 *
 * Guarantees: a nudge only makes something happen sooner; the loops do it anyway, so an
 * undecodable, lost or stale nudge changes nothing but timing. Does not: trust a nudge's
 * content for any decision beyond "look again now".
 */
import type { Redis } from "ioredis";
import { createRedis, type RedisTarget } from "../shared/redis.js";
import { decodeNudge } from "../shared/redis-protocol.js";
import type { LeaderLoop } from "../leader/leader.js";

export interface NudgeTargets {
  readonly id: string;
  /** The assignment version of the rows this agent last read. */
  readonly ownVersion: () => number;
  readonly leading: () => boolean;
  /** Re-read this agent's rows now. */
  readonly reloadOwn: () => void;
  /** Re-read the membership now, then recompute the offer. */
  readonly refreshView: () => void;
  readonly leader: Pick<LeaderLoop, "nudge" | "requestRebalance">;
}

/** A subscriber on `channel` handing every nudge to `onNudge`; the caller closes it. */
export function subscribeNudges(at: RedisTarget, channel: string, to: NudgeTargets): Redis {
  const sub = createRedis(at, { commandTimeoutMs: 1000, subscriber: true });
  sub.on("message", (_channel: string, message: string) => onNudge(message, to));
  // Re-read after (re)subscribing: nudges sent while we were away are lost.
  sub.on("ready", () => to.reloadOwn());
  void sub.subscribe(channel).catch(() => {});
  return sub;
}

export function onNudge(message: string, to: NudgeTargets): void {
  const n = decodeNudge(message);
  if (!n) return;
  const leading = to.leading();
  switch (n.t) {
    case "assign":
      if ((n.versions[to.id] ?? 0) > to.ownVersion()) to.reloadOwn();
      break;
    case "mode":
    case "drain":
      to.reloadOwn();
      if (leading) to.leader.nudge();
      break;
    case "leader":
      to.refreshView();
      to.reloadOwn();
      break;
    case "ack":
      if (leading) to.leader.nudge();
      break;
    case "rebalance":
      if (leading) to.leader.requestRebalance();
      break;
  }
}
