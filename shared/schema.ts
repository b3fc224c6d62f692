/**
 * The orchestrator's own tables and their migrations. The only module that owns SQL DDL.
 *
 * Migrations are idempotent and concurrency-safe: every agent runs `migrate()` at start,
 * and they serialize on a transaction-scoped advisory lock, so fifty agents starting at
 * once apply each step exactly once. A schema already current (every migration recorded)
 * is recognised by one read, without the lock or a transaction: steps are only ever
 * added, and each commits with its record, so a complete record means a complete schema.
 * A migrator that lost the race for a new schema retries in a fresh transaction (its
 * catalog cache predates the winner's commit).
 *
 * Tables (schema ORCHESTRATOR_SCHEMA, default "orchestrator"):
 * - leadership: one row; `epoch` is the fencing token. Every assignment write checks it.
 *   `redis_incarnation`: the Redis the current leader reads members from.
 * - cluster: one row; the fleet-wide mode flag (orchestrated | hashed).
 * - instances: one row per agent ever seen; registration data, drain flag, and the
 *   assignment `version` the leader bumps whenever that member's rows change.
 * - assignments: one row per assigned stream; `state` = active | revoking.
 * - events: what moved, when, and why.
 * - heartbeats: one row per agent, its latest heartbeat: the second liveness channel
 *   beside Redis (shared/pg-heartbeats.ts), with digests of its parts PostgreSQL keeps.
 * - stream_health, stream_failures, health_samples: whether streams are heard, where
 *   they failed, and served-and-healthy counts over time (shared/stream-health-store.ts).
 */
import type { Sql, TxSql } from "./db.js";
import { ident } from "./db.js";

interface Migration {
  readonly id: number;
  readonly name: string;
  readonly up: (tx: TxSql, s: string) => Promise<unknown>;
}

const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: "core tables",
    up: async (tx, s) => {
      await tx.unsafe(`
        create table ${s}.leadership (
          id boolean primary key default true check (id),
          epoch bigint not null default 0,
          leader_id text,
          elected_at timestamptz
        );
        insert into ${s}.leadership (id) values (true);

        create table ${s}.cluster (
          id boolean primary key default true check (id),
          mode text not null default 'orchestrated' check (mode in ('orchestrated', 'hashed')),
          mode_version bigint not null default 1,
          updated_at timestamptz not null default now(),
          updated_by text
        );
        insert into ${s}.cluster (id) values (true);

        create table ${s}.instances (
          id text primary key,
          registered_at timestamptz not null default now(),
          last_seen timestamptz,
          capacity integer,
          draining boolean not null default false,
          drain_requested_at timestamptz,
          status text not null default 'registered',
          version bigint not null default 0,
          epoch bigint not null default 0,
          software_version text,
          location text,
          host text,
          processed_total bigint not null default 0,
          errors_total bigint not null default 0,
          removed_at timestamptz
        );

        create table ${s}.assignments (
          stream_id text primary key,
          instance_id text not null,
          state text not null default 'active' check (state in ('active', 'revoking')),
          next_instance text,
          revoke_version bigint,
          reason text not null,
          epoch bigint not null,
          url text not null,
          name text not null,
          metadata jsonb not null default '{}'::jsonb,
          assigned_at timestamptz not null default now(),
          updated_at timestamptz not null default now()
        );
        create index assignments_instance on ${s}.assignments (instance_id);

        create table ${s}.events (
          id bigserial primary key,
          at timestamptz not null default now(),
          epoch bigint,
          kind text not null,
          stream_id text,
          from_instance text,
          to_instance text,
          reason text,
          detail jsonb
        );
        create index events_at on ${s}.events (at desc);
      `);
    },
  },
  {
    id: 2,
    name: "stamped session",
    // The agent session (process and resync generation) the leader last wrote a member's
    // rows for: an agent trusts its rows only when they were written for its own session.
    up: (tx, s) => tx.unsafe(`alter table ${s}.instances add column stamped_session text`),
  },
  {
    id: 3,
    name: "declared capacity",
    // The capacity a worker of the older API declared: a restarted agent keeps announcing
    // it while that worker keeps running, instead of falling back to MAX_STREAMS.
    up: (tx, s) => tx.unsafe(`alter table ${s}.instances add column declared_capacity integer`),
  },
  {
    id: 4,
    name: "heartbeats",
    // The second liveness channel: every agent writes its heartbeat here as well as to
    // Redis, so a member that reaches only one store is not taken for dead.
    up: (tx, s) =>
      tx.unsafe(`
        create table ${s}.heartbeats (
          instance_id text primary key,
          session     text not null,
          seq         bigint not null,
          payload     jsonb not null,
          written_at  timestamptz not null default now()
        )`),
  },
  {
    id: 5,
    name: "stream health",
    // Whether each stream is heard: its current failure episode (on which instance, since
    // when), its last success and error, its quarantine; the failures charged to it (the
    // failure memory); one sample a minute of served-and-healthy streams.
    up: (tx, s) =>
      tx.unsafe(`
        create table ${s}.stream_health (
          stream_id      text primary key,
          failing_on     text,
          failing_since  timestamptz,
          last_ok_at     timestamptz,
          last_error     text,
          last_error_at  timestamptz,
          quarantined_at timestamptz,
          retry_at       timestamptz,
          retries        integer not null default 0,
          updated_at     timestamptz not null default now()
        );
        create index stream_health_attention on ${s}.stream_health (stream_id)
          where failing_on is not null or quarantined_at is not null;

        create table ${s}.stream_failures (
          id          bigserial primary key,
          stream_id   text not null,
          instance_id text not null,
          exit_label  text,
          error       text,
          at          timestamptz not null default now()
        );
        create index stream_failures_stream on ${s}.stream_failures (stream_id, at desc);
        create index stream_failures_at on ${s}.stream_failures (at);

        create index events_stream on ${s}.events (stream_id, id desc) where stream_id is not null;

        create table ${s}.health_samples (
          at      timestamptz primary key,
          streams integer not null,
          served  integer not null,
          healthy integer not null
        );
      `),
  },
  {
    id: 6,
    name: "deciders' Redis",
    // The incarnation of the Redis the leader reads members from: an agent's Redis-confirmed
    // heartbeat renews its worker's lease only when it went to that Redis.
    up: (tx, s) => tx.unsafe(`alter table ${s}.leadership add column redis_incarnation text`),
  },
  {
    id: 7,
    name: "heartbeat digests",
    // What a heartbeat read compares, computed once per write by PostgreSQL itself
    // (shared/pg-heartbeats.ts): a reader that knows a member's parts gets back only its
    // seq and its worker's counters while the rest is unchanged, without PostgreSQL
    // opening the payload. Generated, so a writer of any version keeps them true.
    // Any payload gets digests (a scalar or an odd `worker` included: a reader skips
    // what is no heartbeat), so no write can fail on them. The table is rewritten under a
    // lock heartbeats wait for: give up after 2 s (the agent's start retries) rather than
    // hold every heartbeat behind a long reader.
    up: async (tx, s) => {
      await tx.unsafe(`set local lock_timeout = '2s'`);
      await tx.unsafe(`
        alter table ${s}.heartbeats
          add column payload_seq numeric generated always as (case when jsonb_typeof(payload->'seq') = 'number' then (payload->'seq')::numeric end) stored,
          add column worker jsonb generated always as (payload->'worker') stored,
          add column core_md5 text generated always as (md5((case
            when jsonb_typeof(payload) <> 'object' then payload
            when jsonb_typeof(payload->'worker') = 'object'
              then jsonb_set(payload - '{seq,held,states}'::text[], '{worker}', (payload->'worker') - '{processed,errors,lastSeenMsAgo}'::text[])
            else payload - '{seq,held,states}'::text[] end)::text)) stored,
          add column held_md5 text generated always as (md5((payload->'held')::text)) stored,
          add column states_md5 text generated always as (md5((payload->'states')::text)) stored`);
    },
  },
];

/** Duplicate-object errors: a schema, table or catalog row another migrator created first. */
const DUPLICATE = new Set(["23505", "42P06", "42P07", "42710"]);

/** Applies missing migrations. Safe to call from many agents at once. */
export async function migrate(sql: Sql, schema: string): Promise<number[]> {
  const s = ident(schema);
  // The common case (every start but the very first): nothing to apply, no lock to queue on.
  if (await isCurrent(sql, s)) return [];
  // The check above leaves the connection's catalog cache saying "no such schema"; an
  // advisory lock does not refresh that cache, so after waiting on the lock for another
  // migrator, `create schema if not exists` can still try to create it and fail on the
  // duplicate. A new transaction reads the catalog afresh: try again (a few times at most).
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrateLocked(sql, schema, s);
    } catch (err) {
      if (attempt >= 3 || !DUPLICATE.has((err as { code?: string }).code ?? "")) throw err;
    }
  }
}

async function migrateLocked(sql: Sql, schema: string, s: string): Promise<number[]> {
  const applied: number[] = [];
  await sql.begin(async (tx) => {
    // One lock for everyone migrating this schema; released at commit.
    await tx`select pg_advisory_xact_lock(hashtext(${"fingerv7-sidecar-migrate:" + schema}))`;
    await tx.unsafe(`create schema if not exists ${s}`);
    await tx.unsafe(`create table if not exists ${s}.migrations (id integer primary key, name text not null, applied_at timestamptz not null default now())`);
    const done = new Set((await tx.unsafe(`select id from ${s}.migrations`)).map((r) => Number(r.id)));
    for (const m of MIGRATIONS) {
      if (done.has(m.id)) continue;
      await m.up(tx, s);
      await tx.unsafe(`insert into ${s}.migrations (id, name) values ($1, $2)`, [m.id, m.name]);
      applied.push(m.id);
    }
  });
  return applied;
}

/** Every migration is recorded (read without the lock); false too when the schema or its record does not exist yet. */
async function isCurrent(sql: Sql, s: string): Promise<boolean> {
  const exists = await sql`select to_regclass(${`${s}.migrations`}) is not null as ok`;
  if (!exists[0]?.ok) return false;
  const done = new Set((await sql.unsafe(`select id from ${s}.migrations`)).map((r) => Number(r.id)));
  return MIGRATIONS.every((m) => done.has(m.id));
}

export const LATEST_MIGRATION = MIGRATIONS[MIGRATIONS.length - 1]!.id;
