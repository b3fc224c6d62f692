/**
 * The original documents' response shapes, pinned field by field: scripts written against
 * the documents must keep working. Every field the documents show is checked here by
 * name and type (the project's own fields are pinned by the other HTTP tests).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { call, startAgent, waitSettled, type RunningAgent } from "./fixture.js";

const STREAMS = 12;
type Json = Record<string, unknown>;

describe("the documents' response shapes", () => {
  let db: TestDatabase;
  const agents: RunningAgent[] = [];

  beforeAll(async () => {
    db = await createTestDatabase("documents");
    await createCatalog(db.sql, STREAMS);
    const prefix = uniqueName("documents");
    agents.push(await startAgent({ id: "d1", databaseUrl: db.url, prefix, capacity: 10 }));
    agents.push(await startAgent({ id: "d2", databaseUrl: db.url, prefix, capacity: 10 }));
    await waitSettled(agents[0]!.app, STREAMS, "the cluster to settle", 2);
  });

  afterAll(async () => {
    for (const a of agents) await a.close();
    await db?.drop();
  });

  it("GET /instances: id, status, registered_at, last_heartbeat, max_streams, current_streams, load_percentage, processed_total, errors_total, location, version, performance_score; a summary", async () => {
    const r = await call(agents[0]!.app, "GET", "/instances");
    expect(r.status).toBe(200);
    const body = r.body as { instances: Json[]; summary: Json };
    expect(body.instances.length).toBe(2);
    for (const i of body.instances) {
      expect(i.id).toBe(i.instance_id);
      expect(typeof i.status).toBe("string");
      for (const k of ["registered_at", "last_heartbeat", "version"]) expect(typeof i[k] === "string" || i[k] === null, k).toBe(true);
      for (const k of ["max_streams", "current_streams", "load_percentage", "processed_total", "errors_total"]) expect(typeof i[k], k).toBe("number");
      expect(typeof i.location).toBe("string");
      expect(i.performance_score).toBeGreaterThanOrEqual(0);
      expect(i.performance_score).toBeLessThanOrEqual(1);
    }
    for (const k of ["total_capacity", "total_assigned", "average_load", "system_imbalance"]) expect(typeof body.summary[k], k).toBe("number");
  });

  it("GET /streams/status: distribution with assigned_streams, stream_ids, last_updated; recent_changes with timestamp, action, details, reason", async () => {
    const r = await call(agents[1]!.app, "GET", "/streams/status");
    expect(r.status).toBe(200);
    const body = r.body as { distribution: Json[]; recent_changes: Json[] };
    let total = 0;
    for (const d of body.distribution) {
      expect(d.assigned_streams).toBe(d.count);
      expect(d.stream_ids).toEqual(d.streams);
      expect(typeof d.last_updated === "string" || d.last_updated === null).toBe(true);
      total += d.assigned_streams as number;
    }
    expect(total).toBe(STREAMS);
    expect(body.recent_changes.length).toBeGreaterThan(0);
    for (const c of body.recent_changes) {
      expect(typeof c.timestamp).toBe("string");
      expect(Number.isNaN(Date.parse(c.timestamp as string))).toBe(false);
      expect(c.action).toBe(c.kind);
      expect(typeof c.details).toBe("string");
      expect("reason" in c).toBe(true);
    }
    expect(body.recent_changes.some((c) => /^(Moved|Assigned) stream \d+ /.test(c.details as string))).toBe(true);
  });

  it("GET /health: status, uptime, version, dependencies with response times; instances {total, active, inactive, warning}; streams {total, assigned, unassigned, processing}", async () => {
    const r = await call(agents[0]!.app, "GET", "/health");
    expect(r.status).toBe(200);
    const h = r.body as Json & { dependencies: Record<string, Json>; instances: Json; streams: Json };
    expect(h.status).toBe("healthy");
    expect(typeof h.uptime_s).toBe("number");
    expect(typeof h.version).toBe("string");
    for (const dep of ["postgres", "redis"]) {
      expect(h.dependencies[dep]!.ok).toBe(true);
      expect(typeof h.dependencies[dep]!.response_ms).toBe("number");
    }
    expect(h.instances).toEqual({ total: 2, active: 2, inactive: 0, warning: 0 });
    expect(h.streams).toMatchObject({ total: STREAMS, assigned: STREAMS, unassigned: 0 });
    expect(typeof h.streams.processing).toBe("number");
  });

  it("GET /metrics: request, heartbeat and rebalance counters", async () => {
    const r = await call(agents[0]!.app, "GET", "/metrics");
    const text = r.body as string;
    for (const family of ["fingerv7_http_requests_total", "fingerv7_heartbeats_total", "fingerv7_rebalances_total"]) expect(text).toContain(`# TYPE ${family} counter`);
  });
});
