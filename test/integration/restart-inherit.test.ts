/**
 * An agent restarted while its worker keeps running: the new process treats the worker as
 * still holding the previous process's rows, and keeps the capacity an older-API worker
 * declared. Regression: the new process reported "holding nothing" at once and announced
 * MAX_STREAMS, so the leader could move those streams (or rebalance for the wrong
 * capacity) while the worker was still capturing them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../agent/agent.js";
import { createApp } from "../../agent/http/app.js";
import { newAgent } from "../helpers/agents.js";
import { waitFor } from "../helpers/cluster.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";

describe("a restarted agent inherits its worker's state", { timeout: 90_000 }, () => {
  let db: TestDatabase;
  const agents: Agent[] = [];
  let prefix: string;

  const make = (id: string, maxStreams = 20) => {
    const a = newAgent({ id, databaseUrl: db.url, prefix, env: { MAX_STREAMS: String(maxStreams) } });
    agents.push(a);
    return a;
  };

  beforeAll(async () => {
    db = await createTestDatabase("inherit");
    await createCatalog(db.sql, 12);
    prefix = uniqueName("inherit");
  });

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.close()));
    await db?.drop();
  });

  it("reports the old rows as held and keeps the declared capacity from its first heartbeat", async () => {
    // 12 streams, capacities 7 + 5: the worker beside r2 gets exactly 5.
    const leader = make("r1", 7);
    await leader.start();
    await waitFor(() => leader.elector.isLeader(), 30_000, "r1 to lead");
    const b = make("r2");
    const app = createApp(b);
    await b.start();
    const reg = await app.request("/api/workers/register", { method: "POST", body: JSON.stringify({ instance_id: "fv7-b", capacity: 5 }) });
    expect(reg.status).toBe(200);
    expect(b.capacity).toBe(5);
    const assigned = async () => ((await (await app.request("/api/streams/assign?worker_id=fv7-b")).json()) as { assigned_streams: number[] }).assigned_streams;
    await waitFor(async () => (await assigned()).length === 5, 30_000, "the worker to get its 5 streams");
    const held = (await assigned()).map(String).sort();
    await b.close(); // the agent dies; its worker keeps capturing those 5 streams

    const b2 = make("r2");
    expect(b2.capacity).toBe(20); // nothing known before start
    await b2.start();
    expect(b2.capacity).toBe(5);
    expect(b2.worker.serving.held()).toEqual(held);
    // The leader sees the inherited streams as held by r2: none of them moves meanwhile.
    const rows = await db.sql`select stream_id from orchestrator.assignments where instance_id = 'r2' order by stream_id`;
    expect(rows.map((r) => String(r.stream_id)).sort()).toEqual(held);
    // Once the worker applies the new process's answers, the inherited hold ends.
    const app2 = createApp(b2);
    const again = async () => ((await (await app2.request("/api/streams/assign?worker_id=fv7-b")).json()) as { assigned_streams: number[] }).assigned_streams;
    await waitFor(async () => (await again()).length === 5, 30_000, "the restarted agent to serve the worker again");
    for (let i = 0; i < 3; i++) await again();
    expect(b2.worker.serving.held()).toEqual(held);
    expect(b2.capacity).toBe(5);
  });
});
