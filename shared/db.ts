/**
 * PostgreSQL connections (porsager/postgres). Built from config; no module-level pool, so
 * several agents can live in one process (tests, benchmarks).
 *
 * Rule for every transaction (`sql.begin(async (tx) => ...)`): its callback awaits only its
 * own statements, never Redis, a timer or other work. A pool may end a session idle inside
 * a transaction (DbOptions.idleInTransactionMs), and a connection that closes mid-way is
 * reconnected by the driver: a statement sent after other awaits could land on a new
 * session, outside the transaction and its fence.
 */
import postgres from "postgres";

export type Sql = postgres.Sql<Record<string, never>>;
export type TxSql = postgres.TransactionSql<Record<string, never>>;

export interface DbOptions {
  readonly max?: number;
  /** Seconds to wait for a connection before a query fails. Short: a dead Postgres must not stall the agent. */
  readonly connectTimeout?: number;
  /** PostgreSQL ends a session idle inside a transaction this long (shared/timings.ts postgresIdleInTransactionMs); unset: never. */
  readonly idleInTransactionMs?: number;
}

/** The name every agent session carries in pg_stat_activity (operators and tests find the agents' sessions by it). */
export const APPLICATION_NAME = "fingerv7-sidecar";

/** No statement of the agent's runs longer than this (the largest leader write takes well under a second at 100k streams). */
const STATEMENT_TIMEOUT_MS = 30_000;

export function connect(url: string, opts: DbOptions = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 4,
    connect_timeout: opts.connectTimeout ?? 3,
    // postgres.js' default reconnect backoff grows to 20 s after a few refused attempts,
    // so an outage of seconds left agents waiting long after PostgreSQL was back (the
    // leader could not fail anyone over). Retry quickly, at most once a second.
    backoff: (retries: number) => Math.min(0.05 * 2 ** Math.min(retries, 10), 1),
    idle_timeout: 30,
    max_lifetime: 60 * 30,
    // int8 and numeric come back as strings otherwise; our counters fit in a double.
    types: { bigint: postgres.BigInt },
    transform: { undefined: null },
    onnotice: () => {
      // CREATE ... IF NOT EXISTS notices are expected on every start; nothing to report.
    },
    // Every statement has a server-side bound too (a lock wait, a runaway query); the
    // callers that must answer within a heartbeat add their own client-side deadlines.
    connection: {
      application_name: APPLICATION_NAME,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      ...(opts.idleInTransactionMs === undefined ? {} : { idle_in_transaction_session_timeout: Math.max(1, Math.round(opts.idleInTransactionMs)) }),
    },
  }) as unknown as Sql;
}

/**
 * Options for a statement an agent runs again and again (every heartbeat, every tick):
 * prepared on each connection the first time, so each later run is one round trip (Bind
 * and Execute) instead of two (postgres.js describes an unprepared statement that has
 * parameters before it runs it), and its text is not sent again. Only for a statement
 * whose text is fixed (one per schema): each distinct text stays prepared on its
 * connection until the connection closes. postgres.js prepares the statement again, once,
 * when PostgreSQL says the cached plan no longer fits (a migration changed a table).
 */
export const REPEATED = { prepare: true } as const;

/**
 * Options for a statement run again and again on a table that may grow from empty while
 * it runs (stream_health: a row per stream once workers report): planned at every run from
 * the table's current size. Prepared, PostgreSQL keeps the generic plan it made while the
 * table was empty (a whole-table scan) until an ANALYZE invalidates it, which never comes
 * where autovacuum is off: 24–33 ms per run at 100,000 streams instead of 0.4 ms. Give it
 * no parameters (inline its numbers), so that it still takes one round trip. Without
 * parameters it goes as one simple query, which may hold several statements separated by
 * `;` (the answer is then one result per statement): reads made together at every tick
 * share one round trip that way.
 */
export const PLANNED_EACH_RUN = { prepare: false } as const;

/** A count or duration from the settings as a literal in a statement's text (never text: a whole number ≥ 0). */
export function sqlWholeNumber(n: number): string {
  return String(Number.isFinite(n) ? Math.max(0, Math.round(n)) : 0);
}

/** Quotes an identifier that was already validated (config) or read from the catalog. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Converts int8 values (BigInt) to numbers; ours stay far below 2^53. */
export function num(v: unknown): number {
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "string") return Number(v);
  if (typeof v === "number") return v;
  return 0;
}
