/**
 * An agent that loses leadership and wins it again starts a new term: a new fencing
 * epoch, and it writes again (regression: the loop once kept the old epoch and was
 * fenced out forever).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../agent/agent.js";
import { newAgent } from "../helpers/agents.js";
import { waitFor } from "../helpers/cluster.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";

describe("leadership terms", { timeout: 60_000 }, () => {
  let db: TestDatabase;
  let agent: Agent;

  beforeAll(async () => {
    db = await createTestDatabase("terms");
    await createCatalog(db.sql, 5);
    agent = newAgent({ id: "solo", databaseUrl: db.url, prefix: uniqueName("terms") });
    await agent.start();
  });

  afterAll(async () => {
    await agent?.close();
    await db?.drop();
  });

  const assigned = async () => Number((await db.sql`select count(*)::int as n from orchestrator.assignments where instance_id = 'solo'`)[0]!.n);

  it("a second term bumps the epoch and keeps writing", async () => {
    await waitFor(async () => (await assigned()) === 5, 30_000, "the first term to assign");
    const first = agent.leader.status.epoch!;
    await agent.elector.resign();
    await waitFor(() => agent.elector.isLeader() && agent.leader.status.epoch !== undefined && agent.leader.status.epoch > first, 30_000, "a second term");
    await db.sql`insert into streams (url, name) values ('http://radio.example.invalid/new', 'New')`;
    await waitFor(async () => (await assigned()) === 6, 30_000, "the second term to assign the new stream");
    const epoch = Number((await db.sql`select epoch from orchestrator.leadership`)[0]!.epoch);
    expect(epoch).toBe(agent.leader.status.epoch);
    expect(epoch).toBeGreaterThan(first);
  });
});
