/**
 * The one place that names Redis keys. Every key starts with REDIS_KEY_PREFIX so several
 * clusters (or test files) can share one Redis without seeing each other. Lua scripts
 * (shared/redis-scripts.ts) never build a name: they receive every key they touch as KEYS
 * from here. (Fields of the cluster hash are named in its documentation below and built
 * by the scripts and the protocol.)
 *
 * Redis Cluster: the names carry no hash tag, so one prefix's keys spread over many
 * slots. The code talks to a single Redis (ioredis `Redis`, not `Cluster`) and the
 * multi-key scripts (heartbeat, feed read) need one slot. Adding `{…}` to the names would
 * make a fleet upgraded one agent at a time split into two clusters that cannot see each
 * other's heartbeats or lease, so the names stay as deployed.
 */
export class Keys {
  constructor(readonly prefix: string) {}

  /** The Redlock lease on leadership. Its value is Redlock's random token. */
  get leader(): string {
    return `${this.prefix}:leader`;
  }
  /**
   * Who leads and with which epoch, as agents before the cluster hash read it: JSON {id,
   * epoch, ready}, written by the leader beside the cluster hash's `leader`, TTL = lease.
   * This version reads it only while no live leader is named in the cluster hash.
   * (Agents before this version also wrote `<prefix>:hb:<id>` heartbeat keys; this one
   * writes none.)
   */
  get leaderInfo(): string {
    return `${this.prefix}:leader:info`;
  }
  /**
   * The heartbeat feed: a Redis stream with one entry per heartbeat {id, c}, c = "1" when
   * the member's heartbeat says something new (beyond its sequence number and worker
   * counters) and was stored whole in the cluster hash. Deciders read it from where they
   * left off; capped at FEED_MAXLEN entries.
   */
  get feed(): string {
    return `${this.prefix}:feed`;
  }
  /**
   * What every heartbeat reads back and writes, in one hash: `inc` (this Redis lifetime's
   * id), `mode` (the flag mirror), `leader` and `leaderPub` (the leader info and its last
   * publication, shared/leader-watch.ts), `lmark` ("<feed id> <leader id>" of the leader's
   * last heartbeat), and per member `v:<id>` (its committed assignment version), `hb:<id>`
   * (its heartbeat JSON as last stored whole) and `hbid:<id>` (the feed id that stored it).
   * Nothing in it expires: a member's presence is read from the feed.
   */
  get cluster(): string {
    return `${this.prefix}:cluster`;
  }
  /**
   * Sorted set of instance ids that have heartbeated, as agents before the heartbeat feed
   * wrote it; kept for pruning only (this version reads the feed).
   */
  get members(): string {
    return `${this.prefix}:members`;
  }
  /** Hash instance id → committed assignment version, for agents before the cluster hash (also written there). */
  get versions(): string {
    return `${this.prefix}:versions`;
  }
  /** Mirror of the cluster mode flag: JSON {mode, version}, for agents before the cluster hash (also written there). Postgres holds the record. */
  get mode(): string {
    return `${this.prefix}:mode`;
  }
  /** The incarnation as agents before the cluster hash kept it (this version keeps it in `cluster`). */
  get incarnation(): string {
    return `${this.prefix}:incarnation`;
  }
  /** Pub/sub channel for nudges ("assignments changed", "ack", "mode changed"). */
  get channel(): string {
    return `${this.prefix}:events`;
  }
  /**
   * A SCAN MATCH pattern for every key of this prefix (cleanup in tests and the demo).
   * REDIS_KEY_PREFIX admits no glob characters, so the pattern matches nothing else.
   */
  get pattern(): string {
    return `${this.prefix}:*`;
  }
}
