/**
 * The simulated members of the leader tick benchmark (bench/leader-tick.ts), in a process
 * of their own so that the leader's process runs only the leader. Each member is only its
 * heartbeat, written to both liveness channels every interval: it holds exactly what the
 * leader's committed writes give it, lets a revoked stream go at once, reports the version
 * it was bumped to, and beats again at once (a perfectly prompt worker).
 *
 * The leader's process sends each committed write ("applied") and the members to add;
 * this process answers "beaten" once the members that write concerned have beaten again
 * (the leader is then nudged, as an agent's ack would). FleetState is the bookkeeping both
 * processes keep the same way. Not for production.
 */
import crypto from "node:crypto";
import type { Redis } from "ioredis";
import { connect, type Sql } from "../shared/db.js";
import { Keys } from "../shared/keys.js";
import { PgHeartbeats } from "../shared/pg-heartbeats.js";
import type { RowOp } from "../shared/placement/plan.js";
import { RedisProtocol } from "../shared/redis-protocol.js";
import { closeRedis, createRedis } from "../shared/redis.js";
import { Store } from "../shared/store.js";
import type { Heartbeat } from "../shared/types.js";

/** A row operation as the members see it: a stream given to `owner` (and taken from `from`), or taken from `owner`. */
export type FleetOp = readonly ["put", string, string, string | null] | readonly ["drop", string, string];

export type FleetMessage =
  | { readonly t: "start"; readonly pgUrl: string; readonly redisUrl: string; readonly prefix: string; readonly schema: string; readonly ids: readonly string[]; readonly capacity: number; readonly intervalMs: number }
  | { readonly t: "applied"; readonly ops: readonly FleetOp[]; readonly versions: readonly (readonly [string, number])[] }
  | { readonly t: "add"; readonly id: string }
  | { readonly t: "stop" };

export type FleetReply = { readonly t: "ready" } | { readonly t: "beaten" } | { readonly t: "stopped" };

/** The row operations as the members see them (a retarget changes nothing they hold). */
export function fleetOps(ops: readonly RowOp[]): FleetOp[] {
  const out: FleetOp[] = [];
  for (const op of ops) {
    if (op.op === "put") out.push(["put", op.row.stream, op.row.owner, op.from]);
    else if (op.op !== "retarget") out.push(["drop", op.stream, op.owner]);
  }
  return out;
}

/** What each member holds and the version it loaded, kept from the leader's writes. */
export class FleetState {
  readonly held = new Map<string, Set<string>>();
  readonly versions = new Map<string, number>();

  add(id: string): void {
    this.held.set(id, new Set());
    this.versions.set(id, 0);
  }

  apply(ops: readonly FleetOp[], versions: readonly (readonly [string, number])[]): void {
    for (const op of ops) {
      if (op[0] === "put") {
        if (op[3]) this.held.get(op[3])?.delete(op[1]);
        this.held.get(op[2])?.add(op[1]);
      } else this.held.get(op[2])?.delete(op[1]);
    }
    for (const [id, v] of versions) if (this.versions.has(id)) this.versions.set(id, v);
  }
}

class Fleet {
  private readonly state = new FleetState();
  private readonly beaters = new Map<string, (hb: Heartbeat) => Promise<unknown>>();
  private readonly sessions = new Map<string, { session: string; startedAt: string; seq: number }>();
  private readonly sql: Sql;
  private readonly redis: Redis;
  private readonly pg: PgHeartbeats;
  private readonly keys: Keys;
  private readonly store: Store;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly o: Extract<FleetMessage, { t: "start" }>) {
    this.sql = connect(o.pgUrl, { max: 8 });
    this.redis = createRedis(o.redisUrl, { commandTimeoutMs: 2000 });
    this.pg = new PgHeartbeats(this.sql, o.schema);
    this.keys = new Keys(o.prefix);
    this.store = new Store(this.sql, o.schema);
  }

  async start(): Promise<void> {
    await Promise.all(this.o.ids.map((id) => this.add(id)));
    this.loop = this.beatAll();
  }

  async add(id: string): Promise<void> {
    this.state.add(id);
    const protocol = new RedisProtocol(this.redis, this.keys);
    this.beaters.set(id, (hb) => Promise.allSettled([protocol.heartbeat(hb, 5 * this.o.intervalMs), this.pg.write(hb)]));
    this.sessions.set(id, { session: crypto.randomUUID(), startedAt: new Date().toISOString(), seq: 0 });
    await this.store.register({ id, capacity: this.o.capacity, software: "bench", location: "bench", host: "bench" });
  }

  async beat(id: string): Promise<void> {
    const s = this.sessions.get(id)!;
    const seq = ++s.seq;
    await this.beaters.get(id)!({
      id,
      seq,
      ttlMs: 5 * this.o.intervalMs,
      leaseMs: 5 * this.o.intervalMs,
      session: s.session,
      capacity: this.o.capacity,
      draining: false,
      mode: "orchestrated",
      useOrchestrator: true,
      version: this.state.versions.get(id) ?? 0,
      held: [...this.state.held.get(id)!],
      leaving: false,
      restarting: false,
      released: [],
      worker: { ok: true, lastSeenMsAgo: 0, processed: seq, errors: 0, kind: "v1" },
      pgOk: true,
      redisOk: true,
      startedAt: s.startedAt,
      host: "bench",
      location: "bench",
      software: "bench",
    });
  }

  async applied(ops: readonly FleetOp[], versions: readonly (readonly [string, number])[]): Promise<void> {
    this.state.apply(ops, versions);
    await Promise.all(versions.map(([id]) => (this.beaters.has(id) ? this.beat(id) : undefined)));
  }

  private async beatAll(): Promise<void> {
    while (!this.stopped) {
      const next = performance.now() + this.o.intervalMs;
      await Promise.all([...this.beaters.keys()].map((id) => this.beat(id)));
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await closeRedis(this.redis).catch(() => {});
    await this.sql.end({ timeout: 2 });
  }
}

if (process.env.TICK_FLEET_CHILD === "1" && process.send) {
  let fleet: Fleet | undefined;
  const reply = (r: FleetReply) => process.send!(r);
  process.on("message", (m: FleetMessage) => {
    void (async () => {
      if (m.t === "start") {
        fleet = new Fleet(m);
        await fleet.start();
        reply({ t: "ready" });
      } else if (m.t === "applied") {
        await fleet?.applied(m.ops, m.versions);
        reply({ t: "beaten" });
      } else if (m.t === "add") {
        await fleet?.add(m.id);
        await fleet?.beat(m.id);
        reply({ t: "beaten" });
      } else {
        await fleet?.stop();
        reply({ t: "stopped" });
        process.disconnect();
      }
    })();
  });
}
