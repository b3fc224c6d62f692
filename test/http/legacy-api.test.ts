/**
 * Contract of the older worker API (agent/http/legacy.ts), field by field, error answers
 * included, through app.request() against real in-process Agents on a fresh database
 * whose catalog has the production columns and `index` as its id.
 *
 * A and B form one cluster (REQUIRE_WORKER=false); C is a separate cluster used for the
 * worker-id takeover rule and for garbage input.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startAgent, waitSettled, type RunningAgent } from "./fixture.js";
import { waitFor } from "../helpers/cluster.js";
import { createTestDatabase, type TestDatabase, uniqueName } from "../helpers/services.js";

const STREAMS = 12;
const WORKER_TIMEOUT_S = 10;
const PRODUCTION_COLUMNS = ["sheet", "cidade", "estado", "regiao", "segmento"];

describe("older worker API", { timeout: 90_000 }, () => {
  let db: TestDatabase;
  let A: RunningAgent;
  let B: RunningAgent;
  let C: RunningAgent;
  let beats: NodeJS.Timeout | undefined;
  /** What each worker was last told (its whole assignment), to check they never overlap. */
  const lastAnswer = new Map<string, Set<number>>();

  beforeAll(async () => {
    db = await createTestDatabase("legacyapi");
    await db.sql.unsafe(`create table streams (url text, name text, sheet text, cidade text, estado text, regiao text, segmento text, index integer)`);
    await db.sql.unsafe(
      `insert into streams (url, name, sheet, cidade, estado, regiao, segmento, index)
       select 'http://radio.example.invalid/s' || g, 'Radio ' || g, 'Plan1', 'Curitiba', 'PR', 'Sul', 'Popular', g from generate_series(1, ${STREAMS}) g`,
    );
    const prefix = uniqueName("legacyapi");
    const env = { STREAMS_ID_COLUMN: "index", WORKER_TIMEOUT: String(WORKER_TIMEOUT_S) };
    [A, B] = await Promise.all([
      startAgent({ id: "la-a", databaseUrl: db.url, prefix, capacity: 20, env }),
      startAgent({ id: "la-b", databaseUrl: db.url, prefix, capacity: 20, env }),
    ]);
    C = await startAgent({ id: "la-c", databaseUrl: db.url, prefix: uniqueName("legacyapi_c"), capacity: 0, env: { STREAMS_ID_COLUMN: "index", WORKER_TIMEOUT: "1.2", ORCHESTRATOR_SCHEMA: "orch_c" } });
  }, 90_000);

  afterAll(async () => {
    if (beats) clearInterval(beats);
    await Promise.allSettled([A?.close(), B?.close(), C?.close()]);
    await db?.drop();
  });

  async function assign(x: RunningAgent, worker: string): Promise<{ status: number; body: any }> {
    const r = await call(x.app, "GET", `/api/streams/assign?worker_id=${worker}&capacity=30&worker_type=fingerv7`);
    if (r.status === 200) {
      lastAnswer.set(worker, new Set(r.body.assigned_streams));
      const [a, b] = [lastAnswer.get("fv7-a") ?? new Set<number>(), lastAnswer.get("fv7-b") ?? new Set<number>()];
      const both = [...a].filter((s) => b.has(s));
      expect(both, "two workers were told to process the same stream").toEqual([]);
    }
    return r;
  }

  /** Polls both workers (each poll acknowledges what it replaced) until `done`. */
  async function pollUntil(done: () => boolean, what: string): Promise<number> {
    return waitFor(
      async () => {
        await assign(A, "fv7-a");
        await assign(B, "fv7-b");
        return done();
      },
      45_000,
      what,
      100,
    );
  }

  const ids = (w: string) => [...(lastAnswer.get(w) ?? [])].sort((x, y) => x - y);
  const everything = Array.from({ length: STREAMS }, (_, i) => i + 1);

  function expectBad(r: { status: number; body: any }, message: RegExp): void {
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ error: "bad_request", success: false, message: expect.stringMatching(message), detail: r.body.message });
  }

  function expectConflict(r: { status: number; body: any }, holder: string): void {
    expect(r.status).toBe(409);
    expect(r.body.error).toBe("conflict");
    expect(r.body.success).toBe(false);
    expect(r.body.worker_id).toBe(holder);
    expect(r.body.message).toContain(`serves worker ${holder}`);
    expect(r.body.detail).toBe(r.body.message);
  }

  it("POST /api/workers/register: {success, worker_id, message}; the declared capacity replaces MAX_STREAMS", async () => {
    const r = await call(A.app, "POST", "/api/workers/register", {
      body: { instance_id: "fv7-a", worker_type: "fingerv7", capacity: 30, ip: "10.0.0.5", port: 8080, status: "active", metadata: { version: "7.3.0", capabilities: ["audio", "fingerprint"], region: "sul" } },
    });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(["message", "success", "worker_id"]);
    expect(r.body.success).toBe(true);
    expect(r.body.worker_id).toBe("fv7-a");
    expect(r.body.message).toMatch(/registered/);
    expect(A.agent.capacity).toBe(30);
    expect(A.agent.worker.health().kind).toBe("legacy");

    // Optional fields may be left out; only instance_id is required.
    const minimal = await call(A.app, "POST", "/api/workers/register", { body: { instance_id: "fv7-a" } });
    expect(minimal.status).toBe(200);
    expect(A.agent.capacity).toBe(30);
    // This agent's own id always names the worker it serves.
    const alias = await call(A.app, "POST", "/api/workers/register", { body: { instance_id: A.id, capacity: 30 } });
    expect(alias.status).toBe(200);
    expect(alias.body.worker_id).toBe("fv7-a");
  });

  it("POST /api/workers/register: errors", async () => {
    const post = (body: unknown, raw?: string) => call(A.app, "POST", "/api/workers/register", raw === undefined ? { body } : { raw });
    expectBad(await post({ worker_type: "fingerv7", capacity: 5, status: "active" }), /^instance_id is required$/);
    expectBad(await post({ instance_id: "" }), /instance_id/);
    expectBad(await post(undefined, "{not json"), /JSON object/);
    expectBad(await post(["fv7-a"]), /JSON object/);
    expectBad(await post({ instance_id: "fv7-a", capacity: -1 }), /capacity/);
    expectBad(await post({ instance_id: "fv7-a", capacity: "ten" }), /capacity/);
    expectBad(await post({ instance_id: "fv7-a", capacity: 2.5 }), /capacity/);
    expectBad(await post({ instance_id: "fv7-a", port: 70000 }), /port/);
    expectBad(await post({ instance_id: "fv7-a", metadata: "v7" }), /metadata/);
    expectBad(await post({ instance_id: "fv7-a", metadata: { capabilities: "audio" } }), /metadata\.capabilities/);
    expectBad(await post({ instance_id: { id: 1 } }), /instance_id/);
    // A second worker on the same sidecar is refused while the first is alive.
    expectConflict(await post({ instance_id: "fv7-intruder", capacity: 10 }), "fv7-a");
    expect(A.agent.capacity).toBe(30);
  });

  it("POST /api/heartbeat: {success, message}; marks the worker alive, feeds /metrics and /instances; an unknown id registers itself", async () => {
    const fresh = await call(B.app, "POST", "/api/heartbeat", { body: { worker_instance_id: "fv7-b", status: "active", current_load: 0, available_capacity: 25, timestamp: new Date().toISOString() } });
    expect(fresh.status).toBe(200);
    expect(Object.keys(fresh.body).sort()).toEqual(["message", "success"]);
    expect(fresh.body.success).toBe(true);
    expect(fresh.body.message).toMatch(/registered/);
    expect(B.agent.capacity).toBe(25);
    const listed = await call(B.app, "GET", "/api/workers");
    expect(listed.body.workers.map((w: any) => [w.instance_id, w.capacity])).toEqual([["fv7-b", 25]]);

    const r = await call(A.app, "POST", "/api/heartbeat", {
      body: {
        worker_instance_id: "fv7-a",
        status: "active",
        current_load: 3,
        available_capacity: 27,
        timestamp: 1_790_000_000,
        metrics: { system: { cpu_percent: 12.5, memory_percent: 40.25, disk_percent: 71 }, worker: { processed_count: 7, error_count: 1, uptime_s: 100 } },
      },
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ success: true, message: "Heartbeat received" });
    const health = A.agent.worker.health();
    expect(health.ok).toBe(true);
    expect(health.kind).toBe("legacy");
    expect(health.processed).toBe(7);
    expect(health.errors).toBe(1);

    const metrics = await call(A.app, "GET", "/metrics");
    expect(metrics.body).toMatch(/^fingerv7_worker_cpu_percent\{[^}]*\} 12\.5$/m);
    expect(metrics.body).toMatch(/^fingerv7_worker_memory_percent\{[^}]*\} 40\.25$/m);
    expect(metrics.body).toMatch(/^fingerv7_worker_current_load\{[^}]*\} 3$/m);
    expect(metrics.body).toMatch(/^fingerv7_worker_processed\{[^}]*\} 7$/m);

    // The worker's health travels in the agent's heartbeat to every agent's /instances.
    await waitFor(
      async () => {
        const inst = await call(B.app, "GET", "/instances");
        const a = (inst.body.instances as any[]).find((i) => i.instance_id === A.id);
        return a?.worker?.kind === "legacy" && a.worker.ok === true && a.processed_total === 7 && a.errors_total === 1 && a.max_streams === 30;
      },
      15_000,
      "/instances to show A's worker",
    );

    // From here on both workers heartbeat like real ones (every second), so they stay alive.
    beats = setInterval(() => {
      for (const [x, w] of [[A, "fv7-a"], [B, "fv7-b"]] as const) void call(x.app, "POST", "/api/heartbeat", { body: { worker_instance_id: w, status: "active" } }).catch(() => {});
    }, 1000);
  });

  it("POST /api/heartbeat: errors", async () => {
    const post = (body: unknown) => call(A.app, "POST", "/api/heartbeat", { body });
    expectBad(await post({ status: "active", current_load: 1 }), /^worker_instance_id is required$/);
    expectBad(await post({ worker_instance_id: "fv7-a", current_load: -1 }), /current_load/);
    expectBad(await post({ worker_instance_id: "fv7-a", available_capacity: 1.5 }), /available_capacity/);
    expectBad(await post({ worker_instance_id: "fv7-a", metrics: { system: { cpu_percent: "high" } } }), /metrics\.system\.cpu_percent/);
    expectBad(await post({ worker_instance_id: "fv7-a", metrics: [] }), /metrics/);
    expectBad(await post({ worker_instance_id: "fv7-a", timestamp: { at: 1 } }), /timestamp/);
    expectBad(await post("alive"), /JSON object/);
    expectConflict(await post({ worker_instance_id: "fv7-intruder", status: "active" }), "fv7-a");
  });

  it("GET /api/streams/assign: the worker's whole assignment, field by field; held until its next call", async () => {
    await waitSettled(A.app, STREAMS);
    await pollUntil(() => ids("fv7-a").length + ids("fv7-b").length === STREAMS && ids("fv7-a").length > 0 && ids("fv7-b").length > 0, "both workers to have their share");
    const r = await assign(A, "fv7-a");
    expect(r.status).toBe(200);
    const b = r.body;
    expect(Object.keys(b).sort()).toEqual(["assigned_streams", "status", "streams", "total", "worker_id"]);
    expect(b.status).toBe("assigned");
    expect(b.worker_id).toBe("fv7-a");
    expect(b.total).toBe(b.assigned_streams.length);
    expect(b.assigned_streams.every((x: unknown) => Number.isInteger(x))).toBe(true);
    expect(b.assigned_streams).toEqual([...b.assigned_streams].sort((x: number, y: number) => x - y));
    expect(b.streams.map((s: any) => s.id)).toEqual(b.assigned_streams);
    for (const s of b.streams) {
      expect(Object.keys(s).sort()).toEqual(["id", "metadata", "name", "stream_id", "stream_url", "url"]);
      expect(s.stream_id).toBe(String(s.id));
      expect(s.url).toBe(`http://radio.example.invalid/s${s.id}`);
      expect(s.stream_url).toBe(s.url);
      expect(s.name).toBe(`Radio ${s.id}`);
      expect(Object.keys(s.metadata).sort()).toEqual([...PRODUCTION_COLUMNS].sort());
      expect(s.metadata).toEqual({ sheet: "Plan1", cidade: "Curitiba", estado: "PR", regiao: "Sul", segmento: "Popular" });
    }
    // What it was just told counts as held: the agent reports it in its heartbeat.
    expect(A.agent.worker.serving.held()).toEqual(b.assigned_streams.map(String).sort());
    await pollUntil(() => [...ids("fv7-a"), ...ids("fv7-b")].sort((x, y) => x - y).join() === everything.join(), "the two answers to cover the catalog");
  });

  it("GET /api/streams/assign: errors", async () => {
    const get = (q: string) => call(A.app, "GET", `/api/streams/assign${q}`);
    expectBad(await get(""), /^worker_id is required/);
    expectBad(await get("?capacity=5"), /^worker_id is required/);
    expectBad(await get("?worker_id="), /worker_id/);
    expectBad(await get("?worker_id=fv7-a&capacity=abc"), /capacity must be a whole number/);
    expectBad(await get("?worker_id=fv7-a&capacity=-1"), /capacity/);
    expectBad(await get("?worker_id=fv7-a&capacity=1e3"), /capacity/);
    expectConflict(await get("?worker_id=fv7-intruder&capacity=5"), "fv7-a");
  });

  it("POST /api/streams/update: {success, message}; statuses feed the agent and /metrics", async () => {
    const [s1] = ids("fv7-a");
    for (const status of ["processing", "completed"]) {
      const r = await call(A.app, "POST", "/api/streams/update", { body: { stream_id: s1, worker_instance_id: "fv7-a", status } });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ success: true, message: `Stream ${s1} status updated to ${status}` });
      expect(A.agent.worker.streamStates()?.[String(s1)]?.s).toBe(status);
    }
    const failed = await call(A.app, "POST", "/api/streams/update", { body: { stream_id: String(s1), worker_instance_id: "fv7-a", status: "failed", result: { error: "recognition API timeout", attempts: 3 } } });
    expect(failed.status).toBe(200);
    expect(A.agent.worker.streamStates()?.[String(s1)]).toMatchObject({ s: "failed", e: "recognition API timeout" });
    const metrics = await call(A.app, "GET", "/metrics");
    for (const status of ["processing", "completed", "failed"]) {
      expect(metrics.body).toMatch(new RegExp(`^fingerv7_worker_stream_updates_total\\{[^}]*status="${status}"[^}]*\\} 1$`, "m"));
    }
  });

  it("POST /api/streams/update: errors", async () => {
    const post = (body: unknown) => call(A.app, "POST", "/api/streams/update", { body });
    expectBad(await post({ worker_instance_id: "fv7-a", status: "processing" }), /^stream_id is required$/);
    expectBad(await post({ stream_id: 1, status: "processing" }), /^worker_instance_id is required$/);
    expectBad(await post({ stream_id: 1, worker_instance_id: "fv7-a" }), /^status is required/);
    expectBad(await post({ stream_id: 1, worker_instance_id: "fv7-a", status: "done" }), /status must be one of processing, completed, failed, cancelled/);
    expectBad(await post({ stream_id: { id: 1 }, worker_instance_id: "fv7-a", status: "processing" }), /stream_id/);
    expectBad(await post({ stream_id: 1.5, worker_instance_id: "fv7-a", status: "processing" }), /stream_id/);
    expectConflict(await post({ stream_id: 1, worker_instance_id: "fv7-intruder", status: "processing" }), "fv7-a");
  });

  it("POST /streams/release and a `cancelled` update: the streams leave at once and go to the other worker without waiting for a timeout", async () => {
    const [s1, s2, s3] = ids("fv7-a");
    const t0 = performance.now();
    const r = await call(A.app, "POST", "/streams/release", { body: { server_id: "fv7-a", stream_ids: [s1, String(s2), 999] } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: "released", released_streams: [s1, s2], ignored: [999] });
    const cancel = await call(A.app, "POST", "/api/streams/update", { body: { stream_id: s3, worker_instance_id: "fv7-a", status: "cancelled" } });
    expect(cancel.status).toBe(200);
    // The very next answer no longer lists them, and they are no longer held.
    const next = await assign(A, "fv7-a");
    expect(next.body.assigned_streams).not.toContain(s1);
    expect(next.body.assigned_streams).not.toContain(s2);
    expect(next.body.assigned_streams).not.toContain(s3);
    expect(A.agent.worker.serving.held()).not.toContain(String(s1));
    const took = await pollUntil(() => [s1!, s2!, s3!].every((s) => lastAnswer.get("fv7-b")?.has(s)), "the released streams to reach the other worker");
    const elapsed = performance.now() - t0;
    // eslint-disable-next-line no-console
    console.log(`[legacy-api] released streams reached the other worker after ${(elapsed / 1000).toFixed(2)} s (WORKER_TIMEOUT ${WORKER_TIMEOUT_S} s)`);
    expect(took).toBeLessThan(WORKER_TIMEOUT_S * 1000);
  });

  it("POST /streams/release: errors", async () => {
    const post = (body: unknown) => call(A.app, "POST", "/streams/release", { body });
    expectBad(await post({ stream_ids: [1] }), /^server_id is required$/);
    expectBad(await post({ server_id: "fv7-a" }), /^stream_ids is required/);
    expectBad(await post({ server_id: "fv7-a", stream_ids: "1,2" }), /stream_ids/);
    expectBad(await post({ server_id: "fv7-a", stream_ids: [{}] }), /stream_ids\.0/);
    expectBad(await post(null), /JSON object/);
    expectConflict(await post({ server_id: "fv7-intruder", stream_ids: [1] }), "fv7-a");
    // Releasing nothing, or streams that are not this worker's, changes nothing.
    const none = await post({ server_id: "fv7-a", stream_ids: [] });
    expect(none.body).toEqual({ status: "released", released_streams: [], ignored: [] });
  });

  it("a worker that declares capacity 0 hands everything off at its next calls, then gets {status: no_streams}", async () => {
    const r = await call(B.app, "POST", "/api/workers/register", { body: { instance_id: "fv7-b", worker_type: "fingerv7", capacity: 0, status: "active" } });
    expect(r.status).toBe(200);
    expect(B.agent.capacity).toBe(0);
    await pollUntil(() => ids("fv7-b").length === 0 && ids("fv7-a").length === STREAMS, "every stream to move to the worker with room");
    const empty = await assign(B, "fv7-b");
    expect(empty.status).toBe(200);
    expect(Object.keys(empty.body).sort()).toEqual(["assigned_streams", "message", "status", "streams", "total", "worker_id"]);
    expect(empty.body).toMatchObject({ status: "no_streams", assigned_streams: [], streams: [], total: 0, worker_id: "fv7-b" });
    expect(empty.body.message).toMatch(/No streams/);
    expect(ids("fv7-a")).toEqual(everything);
  });

  it("GET /api/workers: the worker this sidecar serves, field by field", async () => {
    clearInterval(beats); // its own heartbeat below must be the last one
    await call(A.app, "POST", "/api/heartbeat", { body: { worker_instance_id: "fv7-a", status: "busy", current_load: 9, available_capacity: 21 } });
    const r = await call(A.app, "GET", "/api/workers");
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(["total", "workers"]);
    expect(r.body.total).toBe(1);
    const [w] = r.body.workers;
    expect(Object.keys(w).sort()).toEqual(["available_capacity", "capacity", "current_load", "instance_id", "last_heartbeat", "registered_at", "status", "worker_type"]);
    expect(w).toMatchObject({ instance_id: "fv7-a", worker_type: "fingerv7", status: "busy", capacity: 30, current_load: 9, available_capacity: 21 });
    expect(Date.parse(w.registered_at)).toBeLessThanOrEqual(Date.parse(w.last_heartbeat));
    expect(Math.abs(Date.now() - Date.parse(w.last_heartbeat))).toBeLessThan(5_000);
  });

  it("another worker id takes over a sidecar only after WORKER_TIMEOUT of silence from the current one", async () => {
    const reg = (id: string) => call(C.app, "POST", "/api/workers/register", { body: { instance_id: id, capacity: 4 } });
    expect((await reg("c-old")).status).toBe(200);
    expect(C.agent.capacity).toBe(4);
    expectConflict(await reg("c-new"), "c-old");
    await new Promise((r) => setTimeout(r, 1500));
    const took = await reg("c-new");
    expect(took.status).toBe(200);
    expect(took.body.worker_id).toBe("c-new");
    // This agent's id names whoever it serves now.
    const alias = await call(C.app, "POST", "/api/heartbeat", { body: { worker_instance_id: C.id, status: "active" } });
    expect(alias.status).toBe(200);
    const list = await call(C.app, "GET", "/api/workers");
    expect(list.body.total).toBe(2);
    expect(list.body.workers.map((w: any) => [w.instance_id, w.status])).toEqual([
      ["c-new", "active"],
      ["c-old", "inactive"],
    ]);
  });

  it("garbage never makes a 500", async () => {
    const routes = ["/api/workers/register", "/api/heartbeat", "/streams/release", "/api/streams/update"];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.oneof(fc.jsonValue(), fc.dictionary(fc.constantFrom("instance_id", "worker_instance_id", "server_id", "stream_ids", "stream_id", "status", "capacity", "metrics", "metadata", "current_load"), fc.jsonValue())), async (route, body) => {
        const r = await call(C.app, "POST", route, { body });
        expect([200, 400, 409]).toContain(r.status);
        if (r.status !== 200) expect(typeof r.body.message).toBe("string");
      }),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom("worker_id", "capacity", "worker_type", "x"), fc.string()), async (q) => {
        const r = await call(C.app, "GET", `/api/streams/assign?${new URLSearchParams(q).toString()}`);
        expect([200, 400, 409]).toContain(r.status);
      }),
      { numRuns: 100 },
    );
  });
});
