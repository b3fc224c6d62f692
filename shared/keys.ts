/**
 * The one place that names Redis keys. Every key starts with REDIS_KEY_PREFIX so several
 * clusters (or test files) can share one Redis without seeing each other. Lua scripts
 * (shared/redis-scripts.ts) never build a name: they receive every key they touch as KEYS
 * from here. (The members' heartbeat keys a decider fetches are named here too, by the
 * caller, after the feed told it which members changed.)
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
  /** Who leads and with which epoch: JSON {id, epoch, ready}, written by the leader, TTL = lease. */
  get leaderInfo(): string {
    return `${this.prefix}:leader:info`;
  }
  /** An agent's heartbeat: JSON Heartbeat, expires after HEARTBEAT_TIMEOUT. */
  heartbeat(instanceId: string): string {
    return `${this.heartbeatPrefix}${instanceId}`;
  }
  /** What every heartbeat key starts with. */
  get heartbeatPrefix(): string {
    return `${this.prefix}:hb:`;
  }
  /**
   * The heartbeat feed: a Redis stream with one entry per heartbeat {id, c}, c = "1" when
   * the member's heartbeat says something new (beyond its sequence number and worker
   * counters). Deciders read it from where they left off; capped at FEED_MAXLEN entries.
   */
  get feed(): string {
    return `${this.prefix}:feed`;
  }
  /**
   * What every heartbeat reads back, in one hash: `inc` (this Redis lifetime's id), `mode`
   * (the flag mirror), `lmark` ("<feed id> <leader id>" of the leader's last heartbeat) and `v:<id>`
   * (each member's committed assignment version).
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
