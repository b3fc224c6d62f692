/**
 * Stream health end to end on real PostgreSQL and Redis, through the agents' own HTTP
 * API: workers (simple loops polling /v1/assignment and posting /v1/report) whose
 * captures fail by rule; the leader moves a stream that fails on an exit=nl worker to an
 * exit=br one, quarantines a dead upstream after STREAM_QUARANTINE_AFTER workers, an
 * operator's retry releases it, and a rate-limited worker's streams move away.
 * Short settings (STREAM_FAILOVER_AFTER=2 s) keep it quick; the rules are the defaults'.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamDetailBody, healthSamplesBody } from "../../shared/status-health.js";
import { instancesBody, streamsStatusBody } from "../../shared/status.js";
import { waitFor } from "../helpers/cluster.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { call, startAgent, TOKEN, waitSettled, type RunningAgent } from "../http/fixture.js";

const STREAMS = 8;
const ENV = { STREAM_FAILOVER_AFTER: "2", STREAM_QUARANTINE_AFTER: "2", STREAM_QUARANTINE_RETRY: "3600", REQUIRE_WORKER: "false", ADMIN_TOKEN: TOKEN, REBALANCE_COOLDOWN: "3600" };

describe("stream health", () => {
  let db: TestDatabase;
  let nl: RunningAgent;
  let br: RunningAgent;
  const stop = new AbortController();
  /** Stream → exit where it fails ("*" everywhere). */
  const fails = new Map<string, string>();
  const pause = new Map<string, string | null>();
  const loops: Promise<void>[] = [];

  /** A worker beside `a` (exit `exit`): takes what it is offered, reports every capture's outcome. */
  async function worker(a: RunningAgent, exit: string): Promise<void> {
    let version: number | undefined;
    while (!stop.signal.aborted) {
      const r = await call(a.app, "GET", `/v1/assignment${version === undefined ? "" : `?version=${version}`}`).catch(() => undefined);
      if (r?.status === 200) {
        version = r.body.version;
        const streams = (r.body.streams as { id: number | string }[]).map((s) => {
          const id = String(s.id);
          const where = fails.get(id);
          return where === "*" || where === exit ? { id, status: "failed", error: "403 Forbidden" } : { id, status: "ok" };
        });
        const body: Record<string, unknown> = { streams };
        if (pause.has(a.id)) body.rate_limited_until = pause.get(a.id);
        await call(a.app, "POST", "/v1/report", { body }).catch(() => undefined);
      }
      await new Promise((res) => setTimeout(res, 250));
    }
  }

  const detail = async (id: string) => {
    const r = await call(br.app, "GET", `/streams/${id}`);
    expect(r.status).toBe(200);
    return streamDetailBody.parse(r.body);
  };
  const ownerOf = async (id: string) => (await detail(id)).owner;

  beforeAll(async () => {
    db = await createTestDatabase("health");
    await createCatalog(db.sql, STREAMS);
    const prefix = uniqueName("health");
    nl = await startAgent({ id: "nl1", databaseUrl: db.url, prefix, capacity: 10, env: { ...ENV, LABELS: "exit=nl" } });
    br = await startAgent({ id: "br1", databaseUrl: db.url, prefix, capacity: 10, env: { ...ENV, LABELS: "exit=br" } });
    await waitSettled(br.app, STREAMS, "the cluster to settle", 2);
    loops.push(worker(nl, "nl"), worker(br, "br"));
  }, 60_000);

  afterAll(async () => {
    stop.abort();
    await Promise.all(loops);
    await nl?.close();
    await br?.close();
    await db?.drop();
  });

  it("GET /streams/:id answers for any stream, 404 for an unknown one, and /v1/report refuses a bad pause time", async () => {
    await waitFor(async () => (await detail("1")).health === "ok", 20_000, "stream 1 to be heard");
    const d = await detail("1");
    expect(d).toMatchObject({ id: 1, state: "assigned", health: "ok", failures: [], quarantine: null, constraint: null, unassigned_reason: null });
    expect(d.last_ok_at).not.toBeNull();
    expect((await call(br.app, "GET", "/streams/nope")).status).toBe(404);
    const bad = await call(nl.app, "POST", "/v1/report", { body: { rate_limited_until: "tomorrow" } });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/rate_limited_until/);
  });

  it("a stream failing on an exit=nl worker moves to the exit=br worker (reason failing) and is heard there", async () => {
    const status = streamsStatusBody.parse((await call(br.app, "GET", "/streams/status")).body);
    const onNl = status.distribution.find((x) => x.instance_id === "nl1")!.streams.map(String);
    expect(onNl.length).toBeGreaterThan(0);
    const geo = onNl[0]!;
    fails.set(geo, "nl");
    await waitFor(async () => (await detail(geo)).health === "failing", 15_000, `stream ${geo} to show failing`);
    const failing = streamsStatusBody.parse((await call(nl.app, "GET", "/streams/status")).body);
    expect(failing.failing_streams.map((f) => String(f.id))).toContain(geo);
    expect(failing.health.failing).toBeGreaterThanOrEqual(1);
    await waitFor(async () => (await ownerOf(geo)) === "br1" && (await detail(geo)).health === "ok", 30_000, `stream ${geo} to move to br1 and be heard`);
    const d = await detail(geo);
    expect(d.failures.map((f) => f.instance_id)).toEqual(["nl1"]);
    expect(d.failures[0]!.error).toContain("403");
    expect(d.recent_moves.some((m) => m.reason === "failing" && m.from === "nl1")).toBe(true);
  });

  it("a dead upstream is quarantined after STREAM_QUARANTINE_AFTER workers, and an operator's retry releases it", async () => {
    const dead = "5";
    fails.set(dead, "*");
    await waitFor(async () => (await detail(dead)).health === "quarantined" && (await ownerOf(dead)) === null, 40_000, "the dead stream to be quarantined");
    const d = await detail(dead);
    expect(new Set(d.failures.map((f) => f.instance_id))).toEqual(new Set(["nl1", "br1"]));
    expect(d).toMatchObject({ state: "unassigned", unassigned_reason: "quarantined" });
    expect(d.quarantine?.retries).toBe(0);
    const st = streamsStatusBody.parse((await call(nl.app, "GET", "/streams/status")).body);
    expect(st.quarantined_streams.map((q) => String(q.id))).toEqual([dead]);
    expect(st.unassigned.map(String)).toContain(dead);
    expect(st.unknown_streams.length).toBe(st.health.unknown);
    expect(st.unknown_streams.map(String)).not.toContain(dead);

    expect((await call(nl.app, "POST", `/streams/${dead}/retry`)).status).toBe(401);
    expect((await call(nl.app, "POST", "/streams/none/retry", { token: TOKEN })).status).toBe(404);
    fails.delete(dead); // the upstream is back
    const r = await call(nl.app, "POST", `/streams/${dead}/retry`, { token: TOKEN });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, id: 5 });
    await waitFor(async () => (await detail(dead)).health === "ok" && (await ownerOf(dead)) !== null, 20_000, "the retried stream to be placed and heard");
    expect((await detail(dead)).failures).toEqual([]);
  });

  it("a rate-limited worker is degraded: its streams move away, it gets nothing new until its pause ends", async () => {
    const before = instancesBody.parse((await call(br.app, "GET", "/instances")).body).instances.find((i) => i.instance_id === "nl1")!;
    expect(before.labels).toEqual({ exit: "nl" });
    expect(before.degraded).toBe(false);
    const until = new Date(Date.now() + 60_000).toISOString();
    pause.set("nl1", until);
    await waitFor(
      async () => {
        const i = instancesBody.parse((await call(br.app, "GET", "/instances")).body).instances.find((x) => x.instance_id === "nl1")!;
        return i.degraded && i.degraded_reason === "rate-limited" && i.current_streams === 0;
      },
      30_000,
      "nl1 to be degraded and lose its streams",
    );
    const st = streamsStatusBody.parse((await call(br.app, "GET", "/streams/status")).body);
    expect(st.distribution.find((x) => x.instance_id === "br1")!.count).toBe(STREAMS);
    expect(st.recent_changes.some((e) => e.reason === "worker-degraded")).toBe(true);
    pause.set("nl1", null);
    await waitFor(
      async () => !instancesBody.parse((await call(br.app, "GET", "/instances")).body).instances.find((x) => x.instance_id === "nl1")!.degraded,
      15_000,
      "nl1's pause to end",
    );
  });

  it("the leader exports health metrics and one sample a minute for the chart", async () => {
    await waitFor(async () => healthSamplesBody.parse((await call(nl.app, "GET", "/health/streams?minutes=5")).body).samples.length > 0, 20_000, "a health sample");
    const s = healthSamplesBody.parse((await call(nl.app, "GET", "/health/streams")).body);
    expect(s.minutes).toBe(60);
    expect(s.samples[0]!.streams).toBe(STREAMS);
    expect((await call(nl.app, "GET", "/health/streams?minutes=0")).status).toBe(400);
    const leader = [nl, br].find((a) => a.agent.leaderInfo?.id === a.id)!;
    const text = String((await call(leader.app, "GET", "/metrics")).body);
    expect(text).toMatch(/fingerv7_streams_health\{[^}]*health="ok"[^}]*\} \d+/);
    expect(text).toMatch(/fingerv7_stream_failovers_total\{[^}]*reason="failing"[^}]*\} [1-9]/);
  });
});
