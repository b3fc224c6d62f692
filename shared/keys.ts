/**
 * The one place that names Redis keys. Every key starts with REDIS_KEY_PREFIX so several
 * clusters (or test files) can share one Redis without seeing each other.
 */
export class Keys {
  constructor(readonly prefix: string) {}

  /** The Redlock lease on leadership. Its value is Redlock's random token. */
  get leader(): string {
    return `${this.prefix}:leader`;
  }
  /** Who leads and with which epoch: JSON {id, epoch}, written by the leader, TTL = lease. */
  get leaderInfo(): string {
    return `${this.prefix}:leader:info`;
  }
  /** An agent's heartbeat: JSON Heartbeat, expires after HEARTBEAT_TIMEOUT. */
  heartbeat(instanceId: string): string {
    return `${this.prefix}:hb:${instanceId}`;
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
}
