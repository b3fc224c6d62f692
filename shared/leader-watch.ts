/**
 * Whether the leader info an agent reads from Redis names a LIVE leader, judged the way
 * client-go's elector judges a lease record: by the local time at which this agent saw
 * the record change, never by a time someone else wrote.
 *
 * The leader rewrites the info (shared/redis-scripts.ts PUBLISH_LEADER) only while its
 * lease token holds the lease, several times per LEADER_LEASE_TTL, each time with a new
 * publication mark "<seq> <Redis ms> <the lease's remaining TTL>". The info is live for
 * that remaining TTL from the moment this agent saw the mark change. A leader that lost
 * its lease writes no new mark, so the info goes absent at most that TTL after the last
 * change seen: no later than the lease could have expired, plus this agent's delay in
 * seeing the change (at most about one heartbeat interval while its replies are fresh).
 *
 * A change is dated at the local time of the read that showed it, moved back by the age
 * Redis's clock gives the publication (the read's Redis time minus the mark's), but never
 * before the previous read: the publication happened after that read, whatever Redis's
 * clock says. So an agent that starts beside the stale info of a dead leader sees it
 * absent at once, and a Redis clock stepped back (stream ids, the read's Redis time, then
 * stand still while TIME moves on) can only make a change look older on the first read.
 *
 * It does not decide when to try the lease (leader/elector.ts and agent/beliefs.ts
 * acquireInMs do, from the replies it filters), nor read the old leader info key, which has a TTL of
 * its own (shared/redis-protocol.ts). PURE: no I/O, no clock (times are passed in).
 */
import type { LeaderInfo } from "./types.js";

/** One read of the leader info: as stored, with the read's Redis time when known. */
export interface LeaderRead {
  readonly info: LeaderInfo | undefined;
  /** The publication mark as stored ("" when none). */
  readonly pub: string;
  /** Redis's time (ms) at the read, when the read tells it. */
  readonly redisNowMs?: number;
}

/** "<seq> <Redis ms> <TTL ms>"; undefined when it does not parse. */
export function parsePub(pub: string): { at: number; ttlMs: number } | undefined {
  const parts = pub.split(" ");
  if (parts.length !== 3) return undefined;
  const at = Number(parts[1]);
  const ttlMs = Number(parts[2]);
  return Number.isFinite(at) && Number.isFinite(ttlMs) && ttlMs > 0 ? { at, ttlMs } : undefined;
}

export class LeaderWatch {
  private seen: { key: string; info: LeaderInfo; changedAt: number; ttlMs: number } | undefined;
  private lastReadAt = -Infinity;

  /** Takes one read made at local time `at`; returns the live leader as of `at`. */
  observe(r: LeaderRead, at: number): LeaderInfo | undefined {
    const pub = parsePub(r.pub);
    const previousRead = this.lastReadAt;
    this.lastReadAt = Math.max(this.lastReadAt, at);
    if (!r.info || !pub) {
      this.seen = undefined;
      return undefined;
    }
    const key = `${JSON.stringify(r.info)}|${r.pub}`;
    if (this.seen?.key !== key) {
      const age = r.redisNowMs === undefined ? 0 : Math.max(0, r.redisNowMs - pub.at);
      this.seen = { key, info: r.info, changedAt: Math.max(previousRead, at - age), ttlMs: pub.ttlMs };
    }
    return this.live(at);
  }

  /** The leader named by the last read, while its info is live at local time `now`. */
  live(now: number): LeaderInfo | undefined {
    const s = this.seen;
    return s && now - s.changedAt < s.ttlMs ? s.info : undefined;
  }
}
