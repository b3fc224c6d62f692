/**
 * GET /metrics: Prometheus text from each agent's private registry, with the families the
 * operator needs, checked by promtool (Debian package `prometheus`; .ci/tools installs it).
 * A missing promtool FAILS this test: the format check is part of the contract.
 */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { call, startAgent, waitSettled, type RunningAgent } from "./fixture.js";

const STREAMS = 12;

function promtool(text: string): { code: number | null; output: string } {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8", timeout: 30_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
    throw new Error("promtool is not installed: it comes with the Debian package `prometheus` (run .ci/tools, or apt-get install prometheus)");
  }
  if (r.error) throw r.error;
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Sample lines of one metric family (name followed by labels or a space). */
function samples(text: string, name: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe("GET /metrics", () => {
  let db: TestDatabase;
  let agents: RunningAgent[] = [];

  beforeAll(async () => {
    db = await createTestDatabase("metrics");
    await createCatalog(db.sql, STREAMS);
    const prefix = uniqueName("metrics");
    agents = [await startAgent({ id: "m1", databaseUrl: db.url, prefix, capacity: 10 }), await startAgent({ id: "m2", databaseUrl: db.url, prefix, capacity: 10 })];
    await waitSettled(agents[0]!.app, STREAMS, "the cluster to settle", 2);
  });

  afterAll(async () => {
    for (const a of agents) await a.close();
    await db?.drop();
  });

  const scrape = async (a: RunningAgent) => {
    const r = await call(a.app, "GET", "/metrics");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return r.body as string;
  };

  it("passes promtool check metrics on every agent", async () => {
    for (const a of agents) {
      await call(a.app, "GET", "/status");
      await call(a.app, "GET", "/no/such/route");
      const text = await scrape(a);
      const r = promtool(text);
      expect(r.output).toBe("");
      expect(r.code).toBe(0);
    }
  });

  it("exports the operator's families: streams, moves, rebalances, elections, epoch, heartbeats, handoffs, HTTP, process", async () => {
    // The agent that leads by its own elector (another agent's view of the leader may lag
    // a change of leadership on a busy machine).
    let leader: RunningAgent | undefined;
    for (let i = 0; i < 300 && !leader; i++) {
      leader = agents.find((a) => a.agent.elector.isLeader());
      if (!leader) await new Promise((r) => setTimeout(r, 100));
    }
    if (!leader) throw new Error("no agent leads after 30 s");
    const follower = agents.find((a) => a !== leader)!;
    const text = await scrape(leader);
    for (const family of [
      "fingerv7_streams_served",
      "fingerv7_streams_held",
      "fingerv7_cluster_streams",
      "fingerv7_moves_total",
      "fingerv7_rebalances_total",
      "fingerv7_leader_elections_total",
      "fingerv7_leader_epoch",
      "fingerv7_is_leader",
      "fingerv7_heartbeats_total",
      "fingerv7_handoff_duration_seconds",
      "fingerv7_http_requests_total",
      "fingerv7_http_request_duration_seconds",
      "fingerv7_cluster_members",
      "fingerv7_admin_requests_total",
      "process_cpu_user_seconds_total",
      "process_resident_memory_bytes",
      "nodejs_eventloop_lag_seconds",
    ]) {
      expect(text, family).toContain(`# TYPE ${family} `);
    }
    expect(samples(text, "fingerv7_is_leader")).toEqual([`fingerv7_is_leader{instance="${leader.id}"} 1`]);
    expect(samples(text, "fingerv7_leader_elections_total")).toHaveLength(1);
    expect(samples(text, "fingerv7_leader_elections_total")[0]).toMatch(new RegExp(`^fingerv7_leader_elections_total\\{instance="${leader.id}"\\} [1-9]`));
    expect(text).toMatch(new RegExp(`fingerv7_cluster_streams\\{state="assigned",instance="${leader.id}"\\} ${STREAMS}`));
    expect(text).toMatch(/fingerv7_moves_total\{reason="catalog",instance="[^"]+"\} [1-9]/);
    expect(text).toMatch(/fingerv7_heartbeats_total\{channel="redis",result="ok",instance="[^"]+"\} [1-9]/);
    expect(text).toMatch(/fingerv7_heartbeats_total\{channel="postgres",result="ok",instance="[^"]+"\} [1-9]/);
    expect(text).toMatch(/fingerv7_cluster_members\{state="alive",instance="[^"]+"\} 2/);
    expect(text).toMatch(/fingerv7_mode\{mode="orchestrated",instance="[^"]+"\} 1/);
    expect(text).toMatch(/fingerv7_leader_epoch\{instance="[^"]+"\} [1-9]/);

    // Cluster-wide counts come from the leader only, so a sum across agents is never doubled.
    const ftext = await scrape(follower);
    expect(samples(ftext, "fingerv7_cluster_streams")).toEqual([]);
    expect(samples(ftext, "fingerv7_is_leader")).toEqual([`fingerv7_is_leader{instance="${follower.id}"} 0`]);
    expect(ftext).toMatch(/fingerv7_leader_epoch\{instance="[^"]+"\} [1-9]/);
  });

  it("labels HTTP requests by route pattern, not by raw path", async () => {
    const a = agents[0]!;
    for (const id of ["x1", "x2", "x3"]) await call(a.app, "GET", `/instances/${id}`);
    await call(a.app, "GET", "/random/path/abc");
    const text = await scrape(a);
    expect(text).toMatch(/fingerv7_http_requests_total\{route="\/instances\/:id",method="GET",status="404",instance="[^"]+"\} 3/);
    expect(text).not.toContain("/instances/x1");
    expect(text).not.toContain("/random/path/abc");
  });
});
