/**
 * GET /health: this agent and its dependencies; 200 when healthy, 503 when not.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../agent/agent.js";
import { newAgent } from "../helpers/agents.js";
import { createApp } from "../../agent/http/app.js";
import { waitFor } from "../helpers/cluster.js";
import { PrivateRedis } from "../helpers/private-servers.js";
import { createCatalog, createTestDatabase, type TestDatabase } from "../helpers/services.js";

describe("GET /health", { timeout: 60_000 }, () => {
  let db: TestDatabase;
  let redis: PrivateRedis;
  let agent: Agent;

  beforeAll(async () => {
    db = await createTestDatabase("health");
    await createCatalog(db.sql, 4);
    redis = await PrivateRedis.start();
    agent = newAgent({ id: "h1", databaseUrl: db.url.replace("postgres@", "postgres:change-me-pw@"), redisUrl: redis.url, prefix: "health" });
    await agent.start();
  });

  afterAll(async () => {
    await agent?.close();
    await redis?.stop();
    await db?.drop();
  });

  it("is 200 with dependencies, mode, leader and the cluster counts when healthy", async () => {
    const app = createApp(agent);
    let body: Record<string, any> = {};
    await waitFor(async () => {
      const res = await app.request("/health");
      body = (await res.json()) as Record<string, any>;
      return res.status === 200 && body.leader === "h1" && body.cluster?.streams?.assigned === 4;
    }, 30_000, "a healthy leader with everything assigned");
    expect(body.status).toBe("healthy");
    expect(body.instance_id).toBe("h1");
    expect(body.is_leader).toBe(true);
    expect(body.mode).toBe("orchestrated");
    expect(typeof body.epoch).toBe("number");
    expect(body.dependencies.postgres.ok).toBe(true);
    expect(body.dependencies.redis.ok).toBe(true);
    expect(typeof body.dependencies.postgres.response_ms).toBe("number");
    expect(body.cluster.instances.active).toBe(1);
    expect(body.cluster.streams.unassigned).toBe(0);
    expect(JSON.stringify(body)).not.toContain("change-me-pw");
  });

  it("is 503 naming the dependency when Redis is down, and recovers without a restart", async () => {
    const app = createApp(agent);
    await redis.down();
    let body: Record<string, any> = {};
    await waitFor(async () => {
      const res = await app.request("/health");
      body = (await res.json()) as Record<string, any>;
      return res.status === 503;
    }, 30_000, "an unhealthy answer");
    expect(body.status).toBe("unhealthy");
    expect(body.dependencies.redis.ok).toBe(false);
    expect(typeof body.dependencies.redis.error).toBe("string");
    await redis.up();
    await waitFor(async () => (await app.request("/health")).status === 200, 30_000, "healthy again");
  });
});
