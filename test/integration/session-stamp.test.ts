/**
 * A restarted agent (same INSTANCE_ID, new process) serves its rows only once the leader
 * has rewritten them for its new session. Regression: a restarted agent used to serve
 * rows written before a hashing period while a hashing peer had taken the same streams.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../agent/agent.js";
import { newAgent } from "../helpers/agents.js";
import { assignmentBody } from "../../agent/http/worker.js";
import { waitFor } from "../helpers/cluster.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";

describe("rows are stamped for the agent's session", { timeout: 60_000 }, () => {
  let db: TestDatabase;
  const agents: Agent[] = [];
  let prefix: string;

  const make = (id: string) => {
    const a = newAgent({ id, databaseUrl: db.url, prefix, env: { MAX_STREAMS: "20" } });
    agents.push(a);
    return a;
  };

  beforeAll(async () => {
    db = await createTestDatabase("stamp");
    await createCatalog(db.sql, 10);
    prefix = uniqueName("stamp");
  });

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.close()));
    await db?.drop();
  });

  it("a restarted agent offers nothing until the leader wrote its rows for the new process", async () => {
    const a = make("s1");
    await a.start();
    await waitFor(() => a.elector.isLeader(), 30_000, "s1 to lead");
    const b = make("s2");
    await b.start();
    await waitFor(() => assignmentBody(b).streams.length > 0, 30_000, "s2 to serve");
    const firstSession = b.sessionNow;
    expect(b.ownAssignment?.stampedSession).toBe(firstSession);
    await b.close(); // a crash-like stop: no drain, rows stay (static membership)

    const b2 = make("s2");
    expect(b2.sessionNow).not.toBe(firstSession);
    const started = b2.start();
    // Watch every offer: the first non-empty one must come from rows stamped for b2.
    let stampedWhenServing: string | null | undefined;
    await waitFor(() => {
      const body = assignmentBody(b2);
      if (body.streams.length > 0 && stampedWhenServing === undefined) stampedWhenServing = b2.ownAssignment?.stampedSession ?? null;
      return stampedWhenServing !== undefined;
    }, 30_000, "the restarted s2 to serve", 5);
    await started;
    expect(stampedWhenServing).toBe(b2.sessionNow);
    const rows = await db.sql`select stamped_session from orchestrator.instances where id = 's2'`;
    expect(rows[0]!.stamped_session).toBe(b2.sessionNow);
  });
});
