/**
 * The read-only operator endpoints, through `app.request()`, on two real in-process agents:
 * every agent answers for the whole cluster (the follower's answer matches the leader's).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorBody, instancesBody, statusBody, streamsStatusBody } from "../../shared/status.js";
import { waitFor } from "../helpers/cluster.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { call, startAgent, waitCounts, waitSettled, type RunningAgent } from "./fixture.js";

const STREAMS = 30;

describe("operator endpoints", () => {
  let db: TestDatabase;
  let a1: RunningAgent;
  let a2: RunningAgent;

  beforeAll(async () => {
    db = await createTestDatabase("operator");
    await createCatalog(db.sql, STREAMS);
    await db.sql`insert into streams (url, name, active) values ('http://radio.example.invalid/off', 'Off air', false)`;
    const prefix = uniqueName("operator");
    a1 = await startAgent({ id: "a1", databaseUrl: db.url, prefix, capacity: 20, env: { LOCATION: "rack-1" } });
    a2 = await startAgent({ id: "a2", databaseUrl: db.url, prefix, capacity: 20 });
    await waitSettled(a2.app, STREAMS, "the cluster to settle", 2);
  });

  afterAll(async () => {
    await a1?.close();
    await a2?.close();
    await db?.drop();
  });

  it("GET /status: the cluster in one object, the same from every agent", async () => {
    const views = [];
    for (const a of [a1, a2]) {
      const r = await call(a.app, "GET", "/status");
      expect(r.status).toBe(200);
      const s = statusBody.parse(r.body);
      expect(s.answered_by).toBe(a.id);
      views.push(s);
    }
    const [s1, s2] = views as [ReturnType<typeof statusBody.parse>, ReturnType<typeof statusBody.parse>];
    expect(s1.leader?.id).toMatch(/^a[12]$/);
    expect(s2.leader?.id).toBe(s1.leader?.id);
    expect(s1.epoch).toBeGreaterThan(0);
    expect(s1.mode).toBe("orchestrated");
    expect(s1.instances).toMatchObject({ total: 2, active: 2, draining: 0, inactive: 0 });
    expect(s1.streams).toEqual({ total: STREAMS + 1, active: STREAMS, inactive: 1, assigned: STREAMS, unassigned: 0, revoking: 0, legacy: 0 });
    expect(s2.streams).toEqual(s1.streams);
    expect(s1.catalog_error).toBeNull();
  });

  it("GET /instances: per instance load and worker health, and a summary", async () => {
    const r = await call(a2.app, "GET", "/instances");
    expect(r.status).toBe(200);
    const body = instancesBody.parse(r.body);
    expect(body.instances.map((i) => i.instance_id)).toEqual(["a1", "a2"]);
    expect(body.instances.filter((i) => i.is_leader)).toHaveLength(1);
    const total = body.instances.reduce((s, i) => s + i.current_streams, 0);
    expect(total).toBe(STREAMS);
    for (const i of body.instances) {
      expect(i.status).toBe("active");
      expect(i.max_streams).toBe(20);
      expect(i.load_percentage).toBeCloseTo((100 * i.current_streams) / 20, 1);
      expect(i.registered_at).not.toBeNull();
      expect(i.last_heartbeat_ms_ago).not.toBeNull();
      expect(i.worker).toMatchObject({ kind: "none", last_seen_ms_ago: null });
      expect(i.version).toBe("0.1.0");
      expect(i.mode).toBe("orchestrated");
    }
    expect(body.instances[0]!.location).toBe("rack-1");
    expect(body.summary).toMatchObject({ total_instances: 2, live_instances: 2, total_capacity: 40, total_assigned: STREAMS, imbalance_threshold: 0.15 });
    expect(body.summary.average_load).toBeCloseTo(75, 0);
    expect(body.summary.system_imbalance).toBeLessThanOrEqual(0.15);
  });

  it("GET /instances/:id: one instance with its stream ids; unknown is 404, a bad id 400", async () => {
    const r = await call(a1.app, "GET", "/instances/a2");
    expect(r.status).toBe(200);
    expect(r.body.instance.instance_id).toBe("a2");
    expect(r.body.streams).toHaveLength(r.body.instance.current_streams);
    const missing = await call(a1.app, "GET", "/instances/nobody");
    expect(missing.status).toBe(404);
    expect(errorBody.parse(missing.body).message).toContain("nobody");
    const bad = await call(a1.app, "GET", "/instances/%20bad%20id");
    expect(bad.status).toBe(400);
    expect(errorBody.parse(bad.body).message).toMatch(/instance id/);
  });

  it("GET /streams/status: totals, who serves which ids, and recent changes with reasons", async () => {
    const r = await call(a1.app, "GET", "/streams/status");
    expect(r.status).toBe(200);
    const body = streamsStatusBody.parse(r.body);
    expect(body.streams.assigned).toBe(STREAMS);
    const ids = body.distribution.flatMap((d) => d.streams).sort((a, b) => Number(a) - Number(b));
    expect(ids).toEqual(Array.from({ length: STREAMS }, (_, i) => i + 1));
    for (const d of body.distribution) expect(d.count).toBe(d.streams.length);
    expect(body.unassigned).toEqual([]);
    const assigns = body.recent_changes.filter((e) => e.kind === "assign");
    expect(assigns.length).toBeGreaterThan(0);
    for (const e of assigns) {
      expect(e.reason).toBeTruthy();
      expect(e.to).toMatch(/^a[12]$/);
    }
    expect(body.recent_changes.some((e) => e.kind === "leader")).toBe(true);

    const few = await call(a1.app, "GET", "/streams/status?limit=3");
    expect(streamsStatusBody.parse(few.body).recent_changes).toHaveLength(3);
    for (const q of ["limit=abc", "limit=-1", "limit=5000", "limit=1.5"]) {
      const bad = await call(a1.app, "GET", `/streams/status?${q}`);
      expect(bad.status, q).toBe(400);
      expect(errorBody.parse(bad.body).message).toMatch(/limit/);
    }
  });

  it("GET /streams/status shows what each worker last reported per stream, from any agent", async () => {
    // The worker's view of a1 (an agent on a busy machine may briefly withdraw and resync).
    let mine: number[] = [];
    await waitFor(async () => {
      const offer = await call(a1.app, "GET", "/v1/assignment");
      mine = (offer.body as { streams: { id: number }[] }).streams.map((x) => x.id);
      return mine.length > 1;
    }, 30_000, "a1 to offer its streams");
    const [ok, bad] = mine as [number, number];
    const report = await call(a1.app, "POST", "/v1/report", {
      body: {
        processed_count: 12,
        error_count: 1,
        streams: [
          { id: ok, status: "processing" },
          { id: bad, status: "failed", error: "HTTP 404 from the stream" },
        ],
      },
    });
    expect(report.status).toBe(200);
    let d: { stream_states: Record<string, { status: string; error?: string }> } | undefined;
    await waitFor(async () => {
      const body = streamsStatusBody.parse((await call(a2.app, "GET", "/streams/status")).body);
      d = body.distribution.find((x) => x.instance_id === "a1");
      return d?.stream_states[String(bad)]?.status === "failed";
    }, 30_000, "a2 to show a1's stream states");
    expect(d!.stream_states[String(ok)]).toEqual({ status: "processing" });
    expect(d!.stream_states[String(bad)]).toEqual({ status: "failed", error: "HTTP 404 from the stream" });
  });

  it("every agent sees a drain, and the unassigned streams when capacity runs short", async () => {
    expect(await a1.agent.operator.setDraining("a2", true)).toBe(true);
    await waitFor(
      async () => {
        const r = await call(a2.app, "GET", "/instances");
        const a2v = r.body.instances.find((i: { instance_id: string }) => i.instance_id === "a2");
        return a2v.status === "draining" && a2v.current_streams === 0;
      },
      30_000,
      "a2 to be drained",
    );
    const s = statusBody.parse((await call(a2.app, "GET", "/status")).body);
    expect(s.instances.draining).toBe(1);
    // 30 streams, one member of capacity 20 serving: 10 cannot be placed, and they are listed.
    expect(s.streams).toMatchObject({ assigned: 20, unassigned: 10 });
    expect(s.last_rebalance?.by_reason.drain ?? 0).toBeGreaterThan(0);
    const st = streamsStatusBody.parse((await call(a2.app, "GET", "/streams/status")).body);
    expect(st.unassigned).toHaveLength(10);
    expect(st.recent_changes.some((e) => e.kind === "drain" && e.from === "a2")).toBe(true);
    expect(st.recent_changes.some((e) => e.kind === "revoke" && e.reason === "drain")).toBe(true);
    // A completed handoff is reported with the reason it started for.
    const handedOff = st.recent_changes.filter((e) => e.kind === "assign" && e.from === "a2");
    expect(handedOff.length).toBeGreaterThan(0);
    for (const e of handedOff) expect(e.reason).toBe("drain");

    expect(await a1.agent.operator.setDraining("a2", false)).toBe(true);
    await waitSettled(a1.app, STREAMS, "a2 to serve again after the undrain");
    await waitCounts(a1.app, { a1: 15, a2: 15 }, "an even split after the undrain");
    const after = instancesBody.parse((await call(a1.app, "GET", "/instances")).body);
    expect(after.instances.every((i) => i.status === "active" && i.current_streams === 15)).toBe(true);
  });

  it("a Postgres failure is a 503 with a message, not a 500", async () => {
    const broken = await startAgent({ id: "a3", databaseUrl: db.url, prefix: uniqueName("operator_broken"), capacity: 1 });
    // Its connection pool is gone: every query fails, as with an unreachable database.
    await Promise.all([broken.agent.sql.end({ timeout: 1 }), broken.agent.opsSql.end({ timeout: 1 })]);
    const r = await call(broken.app, "GET", "/status");
    expect(r.status).toBe(503);
    expect(errorBody.parse(r.body).message).toMatch(/Cannot read the cluster state/);
    await broken.close();
  });
});
