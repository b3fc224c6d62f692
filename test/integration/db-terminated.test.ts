/**
 * PostgreSQL closes an agent's connection (what a pg_terminate_backend, a fast shutdown or
 * a restart does) and the process lives on:
 * - in the middle of a transaction: the transaction fails with an error its caller
 *   catches and the same pool answers again. Regression: postgres.js 3.4.9 sent the
 *   ROLLBACK after the socket had gone and threw an uncaught TypeError from a timer;
 * - while a new connection reads the array types (the driver's first statement on every
 *   connection): the statement waiting for it runs on the next connection. Regression: the
 *   driver dropped that read's promise, so its failure was an unhandled rejection, which
 *   ends the process, and it replayed the old connection's error onto the next statement.
 * tools/patch-postgres.mjs fixes the driver at install (npm ci runs it).
 * And the sessions of the agent's write pool left idle inside a transaction for
 * LEADER_LEASE_TTL (at least 1 s) are ended by PostgreSQL (idle_in_transaction_session_timeout),
 * so a client that is gone releases its locks.
 *
 * The transaction runs in a child process through the agent's own `connect()`, so a crash
 * shows as the child's exit code and stderr, not as noise in the test runner.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import postgres from "postgres";
import { closeConnections, openConnections } from "../../agent/connections.js";
import { loadConfig } from "../../shared/config.js";
import { FAST_TIMINGS } from "../helpers/cluster.js";
import { ADMIN_DATABASE_URL, REDIS_URL, createTestDatabase, type TestDatabase } from "../helpers/services.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * MODE=tx: opens a transaction, prints "pid N" inside it and waits there.
 * MODE=connect: sends one statement on a new connection (the driver reads the array types first).
 * Then one line per outcome.
 */
const CHILD = `
import { connect } from ${JSON.stringify(path.join(ROOT, "shared/db.ts"))};
const sql = connect(process.env.DB_URL, { max: Number(process.env.POOL_MAX) });
const line = (s) => process.stdout.write(s + "\\n");
if (process.env.MODE === "tx") {
  try {
    await sql.begin(async (tx) => {
      const [r] = await tx\`select pg_backend_pid() as pid\`;
      line("pid " + r.pid);
      await tx\`select pg_sleep(10)\`;
    });
    line("tx committed");
  } catch (e) {
    line("tx failed " + (e.code ?? e.message));
  }
} else {
  try {
    line("first statement " + (await sql\`select 7 as x\`)[0].x);
  } catch (e) {
    line("first statement failed " + (e.code ?? e.message));
  }
}
// The pool answers again.
let ok = false;
for (let i = 0; i < 50 && !ok; i++) {
  await new Promise((r) => setTimeout(r, 100));
  try { ok = (await sql\`select 41 + 1 as x\`)[0].x === 42; } catch {}
}
line(ok ? "pool answers" : "pool does not answer");
await new Promise((r) => setTimeout(r, 300)); // any late timer or rejection of the closed connection comes here
line("alive");
await sql.end({ timeout: 1 });
`;

function child(db: TestDatabase, mode: "tx" | "connect", poolMax: number) {
  const proc = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", CHILD], {
    cwd: ROOT,
    env: { ...process.env, DB_URL: db.url, POOL_MAX: String(poolMax), MODE: mode },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const c = { out: "", err: "", exited: new Promise<number | null>((r) => proc.on("exit", (code) => r(code))), proc };
  proc.stdout.on("data", (d) => (c.out += d));
  proc.stderr.on("data", (d) => (c.err += d));
  return c;
}

async function until(what: string, ok: () => boolean | Promise<boolean>, c: ReturnType<typeof child>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await ok())) {
    if (Date.now() > deadline || c.proc.exitCode !== null) throw new Error(`${what}: not seen. Child output: ${c.out}\n${c.err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("PostgreSQL closes an agent's connection", { timeout: 60_000 }, () => {
  let db: TestDatabase;
  /** Another database's connection: it watches and terminates while this one's pg_type is locked. */
  let admin: postgres.Sql;
  beforeAll(async () => {
    db = await createTestDatabase("terminated");
    admin = postgres(ADMIN_DATABASE_URL, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    await admin?.end({ timeout: 1 });
    await db?.drop();
  });

  for (const poolMax of [1, 4]) {
    it(`inside a transaction: the transaction fails, the process and its pool (max ${poolMax}) work on`, async () => {
      const c = child(db, "tx", poolMax);
      await until("the transaction's backend pid", () => /pid \d+/.test(c.out), c);
      await new Promise((r) => setTimeout(r, 200)); // the pg_sleep is in flight
      const [t] = await db.sql`select pg_terminate_backend(${Number(/pid (\d+)/.exec(c.out)![1])}) as done`;
      expect(t!.done).toBe(true);
      const code = await c.exited;
      expect({ code, lines: c.out.trim().split("\n").slice(1) }, `stderr: ${c.err}`).toEqual({
        code: 0,
        lines: ["tx failed CONNECTION_CLOSED", "pool answers", "alive"],
      });
    });
  }

  it("idle inside a transaction for LEADER_LEASE_TTL (at least 1 s): PostgreSQL ends the session of the agent's write pool", async () => {
    // A client gone or cut off inside a transaction keeps its locks until PostgreSQL ends
    // the session (a leader's fenced write holds the leadership row the next leader's epoch
    // bump updates: test/faults/leader-pg-blackhole-in-transaction.fault.ts).
    const config = loadConfig({ ...FAST_TIMINGS, DATABASE_URL: db.url, REDIS_URL, INSTANCE_ID: "idle-tx", MAX_STREAMS: "1", LOG_LEVEL: "silent", LEADER_LEASE_TTL: "1" });
    const c = openConnections(config);
    try {
      const [shown] = await c.sql`show idle_in_transaction_session_timeout`;
      expect(shown!.idle_in_transaction_session_timeout).toBe("1s");
      // The operator reads' and heartbeats' pools hold no locks in a transaction: left alone.
      for (const pool of [c.opsSql, c.hbSql]) expect((await pool`show idle_in_transaction_session_timeout`)[0]!.idle_in_transaction_session_timeout).toBe("0");
      expect(loadConfig({ ...FAST_TIMINGS, DATABASE_URL: db.url, REDIS_URL, INSTANCE_ID: "idle-tx", LEADER_LEASE_TTL: "0.5", HEARTBEAT_INTERVAL: "0.1", HEARTBEAT_TIMEOUT: "1", WORKER_LEASE: "0.5" }).timings.postgresIdleInTransactionMs).toBe(1000);
      const outcome = await c.sql
        .begin(async (tx) => {
          await tx`select 1`;
          await new Promise((r) => setTimeout(r, 2500)); // the client goes quiet inside the transaction
          await tx`select 2`;
        })
        .then(
          () => "committed",
          (e: { code?: string }) => `failed ${e.code}`,
        );
      expect(["failed 25P03", "failed CONNECTION_CLOSED"]).toContain(outcome);
      const [again] = await c.sql`select 3 as x`.catch(() => c.sql`select 3 as x`);
      expect(again!.x).toBe(3);
    } finally {
      await closeConnections(c);
    }
  });

  it("while the connection starts (the driver's array-types read): the waiting statement runs on a new connection, the process works on", async () => {
    // The types read waits on a lock of this database's pg_type until it is terminated.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held!: () => void;
    const isHeld = new Promise<void>((r) => (held = r));
    const holder = db.sql.begin(async (tx) => {
      await tx`lock table pg_catalog.pg_type in access exclusive mode`;
      held();
      await released;
    });
    let c: ReturnType<typeof child> | undefined;
    try {
      await isHeld;
      c = child(db, "connect", 1);
      const waiting = () => admin`select pid from pg_stat_activity where datname = ${db.name} and query like '%typarray%' and wait_event_type = 'Lock'`;
      await until("the array-types read waiting for pg_type", async () => (await waiting()).length > 0, c);
      for (const { pid } of await waiting()) await admin`select pg_terminate_backend(${pid})`;
    } finally {
      release();
      await holder;
    }
    const code = await c.exited;
    expect({ code, lines: c.out.trim().split("\n") }, `stderr: ${c.err}`).toEqual({ code: 0, lines: ["first statement 7", "pool answers", "alive"] });
  });
});
