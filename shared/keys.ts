/**
 * The one place that names Redis keys. Every key starts with REDIS_KEY_PREFIX so several
 * clusters (or test files) can share one Redis without seeing each other. Lua scripts
 * (shared/redis-scripts.ts) never build a name: they receive every key they touch as KEYS
 * from here, except the snapshot's per-member heartbeat keys, which it can only know
 * after reading the members set; it gets `heartbeatPrefix` from here and appends the id.
 *
 * Redis Cluster: the names carry no hash tag, so one prefix's keys spread over many
 * slots. The code talks to a single Redis (ioredis `Redis`, not `Cluster`) and the
 * multi-key scripts (heartbeat, snapshot) need one slot. Adding `{…}` to the names would
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
  /** What every heartbeat key starts with; the snapshot script appends member ids to it. */
  get heartbeatPrefix(): string {
    return `${this.prefix}:hb:`;
  }
  /** Sorted set of instance ids that have heartbeated, scored by Redis time (ms). */
  get members(): string {
    return `${this.prefix}:members`;
  }
  /** Hash instance id → assignment version the leader has committed for it. */
  get versions(): string {
    return `${this.prefix}:versions`;
  }
  /** Mirror of the cluster mode flag: JSON {mode, version}. Postgres holds the record. */
  get mode(): string {
    return `${this.prefix}:mode`;
  }
  /** A random id written once per Redis lifetime; it changes when Redis lost its data. */
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
