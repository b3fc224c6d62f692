/**
 * Secrets never leave the agent: a password in DATABASE_URL or REDIS_URL and the admin
 * token appear in no HTTP answer and no log line, whatever is asked and whatever fails.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeConfig } from "../../shared/config.js";
import { createLogger, redactDeep, redactText } from "../../shared/logger.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { call, startAgent, waitSettled, type RunningAgent } from "./fixture.js";

const DB_SECRET = "change-me-db-password";
const REDIS_SECRET = "change-me-redis-password";
const TOKEN = "change-me-token-0123456789";

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: createLogger({ level: "trace", destination: stream }) };
}

describe("redaction of passwords and tokens", () => {
  let db: TestDatabase;
  let a: RunningAgent;
  const log = capture();

  beforeAll(async () => {
    db = await createTestDatabase("redaction");
    await createCatalog(db.sql, 4);
    // Local PostgreSQL trusts 127.0.0.1, so a password in the URL is accepted and ignored.
    const u = new URL(db.url);
    u.password = DB_SECRET;
    a = await startAgent({ id: "r1", databaseUrl: u.toString(), prefix: uniqueName("redaction"), capacity: 4, logger: log.logger, env: { ADMIN_TOKEN: TOKEN, LOG_LEVEL: "trace" } });
    await waitSettled(a.app, 4, "the cluster to settle", 1);
  });

  afterAll(async () => {
    await a?.close();
    await db?.drop();
  });

  it("no HTTP answer carries the password or the token", async () => {
    a.agent.logger.info({ category: "STARTUP", config: describeConfig(a.agent.config) }, "config");
    const answers: string[] = [];
    for (const path of ["/health", "/status", "/instances", "/instances/r1", "/streams/status", "/metrics", "/dashboard/state", "/"]) {
      const r = await call(a.app, "GET", path);
      expect(r.status, path).toBeLessThan(500);
      answers.push(typeof r.body === "string" ? r.body : JSON.stringify(r.body));
    }
    for (const token of [undefined, "wrong-token-value", TOKEN]) {
      answers.push(JSON.stringify((await call(a.app, "POST", "/rebalance?dry_run=1", { token })).body));
      answers.push(JSON.stringify((await call(a.app, "PUT", "/mode", { token, raw: `{"mode":"${TOKEN}"}` })).body));
    }
    // A failing dependency: the error text must not leak the connection string either.
    await Promise.all([a.agent.sql.end({ timeout: 1 }), a.agent.opsSql.end({ timeout: 1 })]);
    await new Promise((r) => setTimeout(r, 600)); // past the dashboard's half-second shared read
    for (const path of ["/health", "/status", "/instances", "/streams/status", "/dashboard/state"]) {
      const r = await call(a.app, "GET", path);
      expect(r.status, path).toBe(503);
      answers.push(JSON.stringify(r.body));
    }
    const all = answers.join("\n");
    expect(all).not.toContain(DB_SECRET);
    expect(all).not.toContain(TOKEN);
  });

  it("no log line carries them either", () => {
    a.agent.logger.warn({ err: new Error(`connect ECONNREFUSED postgres://postgres:${DB_SECRET}@db.example.invalid/x`) }, "database unreachable");
    a.agent.logger.info({ url: `redis://:${REDIS_SECRET}@cache.example.invalid:6379`, headers: { authorization: `Bearer ${TOKEN}` } }, `retrying redis://u:${REDIS_SECRET}@h`);
    const text = log.lines.join("");
    expect(log.lines.length).toBeGreaterThan(10);
    expect(text).toContain("admin request refused");
    expect(text).toContain("database unreachable");
    for (const secret of [DB_SECRET, REDIS_SECRET, TOKEN]) expect(text).not.toContain(secret);
  });

  it("redactText and redactDeep hide URL passwords and bearer tokens anywhere in text", () => {
    expect(redactText("postgres://u:p4ss@h:5432/db and redis://:pw@r:6379/0")).toBe("postgres://u:***@h:5432/db and redis://:***@r:6379/0");
    expect(redactText("Authorization: Bearer abc.def-123")).toBe("Authorization: Bearer ***");
    expect(redactText("http://host/path?x=1")).toBe("http://host/path?x=1");
    expect(redactDeep({ a: ["x postgres://a:b@c/d"], b: { c: 1, d: null } })).toEqual({ a: ["x postgres://a:***@c/d"], b: { c: 1, d: null } });
  });
});
