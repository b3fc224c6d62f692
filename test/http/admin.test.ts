/**
 * Admin endpoints through `app.request()`: the token (constant-time, refused when none is
 * configured), every error path (400 bad input, 404 unknown instance, 409 wrong mode), and
 * each action's effect on the cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planBody as shapePlan } from "../../agent/http/admin.js";
import type { Plan } from "../../shared/placement/plan.js";
import { drainBody, errorBody, modeBody, planBody, rebalanceBody, statusBody } from "../../shared/status.js";
import { waitFor } from "../helpers/cluster.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { TOKEN, call, startAgent, waitSettled, type RunningAgent } from "./fixture.js";

const STREAMS = 24;

describe("admin endpoints", () => {
  let db: TestDatabase;
  let a1: RunningAgent; // ADMIN_TOKEN set
  let a2: RunningAgent; // no ADMIN_TOKEN: admin refused

  beforeAll(async () => {
    db = await createTestDatabase("admin");
    await createCatalog(db.sql, STREAMS);
    const prefix = uniqueName("admin");
    a1 = await startAgent({ id: "a1", databaseUrl: db.url, prefix, capacity: 30, env: { ADMIN_TOKEN: TOKEN } });
    a2 = await startAgent({ id: "a2", databaseUrl: db.url, prefix, capacity: 30 });
    await waitSettled(a1.app, STREAMS, "the cluster to settle", 2);
  });

  afterAll(async () => {
    await a1?.close();
    await a2?.close();
    await db?.drop();
  });

  const actions: [string, string, unknown][] = [
    ["POST", "/instances/a2/drain", undefined],
    ["POST", "/instances/a2/undrain", undefined],
    ["POST", "/rebalance", undefined],
    ["POST", "/rebalance?dry_run=1", undefined],
    ["PUT", "/mode", { mode: "hashed" }],
  ];

  it("refuses every admin call without the right bearer token (401) and changes nothing", async () => {
    for (const [method, path, body] of actions) {
      for (const headers of [{} as Record<string, string>, { authorization: "Bearer wrong-token-1234" }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }, { authorization: "Bearer" }]) {
        const r = await call(a1.app, method, path, { body, headers });
        expect(r.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(r.headers.get("www-authenticate")).toMatch(/^Bearer/);
        expect(errorBody.parse(r.body).message).toMatch(/token|Authorization/);
        expect(JSON.stringify(r.body)).not.toContain(TOKEN);
      }
    }
    const s = statusBody.parse((await call(a1.app, "GET", "/status")).body);
    expect(s.mode).toBe("orchestrated");
    expect(s.instances.draining).toBe(0);
  });

  it("refuses every admin call (403) on an agent with no ADMIN_TOKEN, whatever the header says", async () => {
    for (const [method, path, body] of actions) {
      for (const token of [undefined, TOKEN, ""]) {
        const r = await call(a2.app, method, path, { body, token });
        expect(r.status, `${method} ${path}`).toBe(403);
        expect(errorBody.parse(r.body).message).toMatch(/ADMIN_TOKEN/);
      }
    }
  });

  it("authenticates before validating: a bad body without a token is a 401, not a 400", async () => {
    expect((await call(a1.app, "PUT", "/mode", { raw: "{nope" })).status).toBe(401);
    expect((await call(a1.app, "POST", "/instances/nobody/drain")).status).toBe(401);
  });

  it("drain / undrain: 404 for an unknown instance, 400 for a bad id or body", async () => {
    const unknown = await call(a1.app, "POST", "/instances/nobody/drain", { token: TOKEN });
    expect(unknown.status).toBe(404);
    expect(errorBody.parse(unknown.body).message).toContain("nobody");
    expect((await call(a1.app, "POST", "/instances/nobody/undrain", { token: TOKEN })).status).toBe(404);
    const cases: [string, { raw?: string; body?: unknown }][] = [
      ["/instances/%20x/drain", {}],
      ["/instances/a2/drain", { raw: "{not json" }],
      ["/instances/a2/drain", { body: { reason: 42 } }],
      ["/instances/a2/drain", { body: { unexpected: true } }],
      ["/instances/a2/drain", { body: [1, 2] }],
      ["/instances/a2/undrain", { raw: "null" }],
    ];
    for (const [path, opts] of cases) {
      const r = await call(a1.app, "POST", path, { token: TOKEN, ...opts });
      expect(r.status, `${path} ${JSON.stringify(opts)}`).toBe(400);
      expect(errorBody.parse(r.body).message.length).toBeGreaterThan(5);
    }
    const s = statusBody.parse((await call(a1.app, "GET", "/status")).body);
    expect(s.instances.draining).toBe(0);
  });

  it("drain moves the instance's streams away; undrain lets it serve again", async () => {
    const r = await call(a1.app, "POST", "/instances/a2/drain", { token: TOKEN, body: { reason: "kernel upgrade" } });
    expect(r.status).toBe(200);
    expect(drainBody.parse(r.body)).toMatchObject({ instance_id: "a2", draining: true });
    await waitFor(async () => {
      const i = (await call(a2.app, "GET", "/instances/a2")).body;
      return i.instance.status === "draining" && i.instance.current_streams === 0;
    }, 30_000, "a2 to hand off every stream");
    await waitSettled(a2.app, STREAMS, "a1 to serve everything");

    const u = await call(a1.app, "POST", "/instances/a2/undrain", { token: TOKEN });
    expect(u.status).toBe(200);
    expect(drainBody.parse(u.body)).toMatchObject({ instance_id: "a2", draining: false });
    await waitFor(async () => (await call(a2.app, "GET", "/instances/a2")).body.instance.current_streams === STREAMS / 2, 30_000, "a2 to get its share back");
  });

  it("PUT /mode: 400 for bad bodies; flips the cluster flag; idempotent", async () => {
    const bad: { raw?: string; body?: unknown }[] = [{}, { raw: "" }, { raw: "hashed" }, { body: { mode: "chaos" } }, { body: { mode: "hashed", extra: 1 } }, { body: { mode: "hashed", by: "x".repeat(100) } }, { body: "hashed" }];
    for (const opts of bad) {
      const r = await call(a1.app, "PUT", "/mode", { token: TOKEN, ...opts });
      expect(r.status, JSON.stringify(opts)).toBe(400);
      expect(errorBody.parse(r.body).message).toBeTruthy();
    }
    const huge = await call(a1.app, "PUT", "/mode", { token: TOKEN, raw: JSON.stringify({ mode: "hashed", by: "x".repeat(20_000) }) });
    expect(huge.status).toBe(413);
    expect(errorBody.parse(huge.body).message).toMatch(/too large/);
    const h = await call(a1.app, "PUT", "/mode", { token: TOKEN, body: { mode: "hashed", by: "test" } });
    expect(h.status).toBe(200);
    expect(modeBody.parse(h.body)).toMatchObject({ mode: "hashed", changed: true });
    const s = statusBody.parse((await call(a2.app, "GET", "/status")).body);
    expect(s).toMatchObject({ mode: "hashed", mode_version: h.body.version, mode_updated_by: "test" });
    const again = await call(a1.app, "PUT", "/mode", { token: TOKEN, body: { mode: "hashed" } });
    expect(modeBody.parse(again.body)).toMatchObject({ mode: "hashed", changed: false, version: h.body.version });

    // Rebalancing a hashed cluster makes no sense: a 409 that says why.
    const rb = await call(a1.app, "POST", "/rebalance", { token: TOKEN });
    expect(rb.status).toBe(409);
    expect(errorBody.parse(rb.body).message).toMatch(/hashed/);

    const o = await call(a1.app, "PUT", "/mode", { token: TOKEN, body: { mode: "orchestrated" } });
    expect(modeBody.parse(o.body)).toMatchObject({ mode: "orchestrated", changed: true });
    await waitSettled(a1.app, STREAMS, "the cluster to be orchestrated again");
  });

  it("POST /rebalance?dry_run=1 returns the plan and changes nothing", async () => {
    const rowsNow = async () => JSON.stringify(await db.sql`select stream_id, instance_id, state from orchestrator.assignments order by stream_id`);
    // The flag flip of the previous test may still be settling: start from rows that held still for a second.
    let before = await rowsNow();
    await waitFor(async () => {
      await new Promise((r) => setTimeout(r, 1000));
      const now = await rowsNow();
      const still = now === before;
      before = now;
      return still;
    }, 30_000, "the assignment to hold still");
    const eventsBefore = (await db.sql`select coalesce(max(id), 0)::int as n from orchestrator.events`)[0]!.n as number;
    const r = await call(a1.app, "POST", "/rebalance?dry_run=1", { token: TOKEN });
    expect(r.status).toBe(200);
    const p = planBody.parse(r.body);
    expect(p.dry_run).toBe(true);
    expect(Object.values(p.targets).reduce((a, b) => a + b, 0)).toBe(STREAMS);
    for (const m of p.moves) expect(m.reason).toBeTruthy();
    expect(p.message).toMatch(/nothing was changed/);
    expect(await rowsNow()).toBe(before);
    const newEvents = await db.sql`select kind, stream_id, reason from orchestrator.events where id > ${eventsBefore}`;
    expect(newEvents).toEqual([]);
  });

  it("POST /rebalance: 400 for a bad query or body; 202 when a leader will act", async () => {
    for (const [path, opts] of [
      ["/rebalance?dry_run=maybe", {}],
      ["/rebalance", { body: { force: true } }],
      ["/rebalance", { raw: "{" }],
    ] as [string, { raw?: string; body?: unknown }][]) {
      const r = await call(a1.app, "POST", path, { token: TOKEN, ...opts });
      expect(r.status, `${path} ${JSON.stringify(opts)}`).toBe(400);
      expect(errorBody.parse(r.body).message).toBeTruthy();
    }
    const r = await call(a1.app, "POST", "/rebalance", { token: TOKEN });
    expect(r.status).toBe(202);
    const body = rebalanceBody.parse(r.body);
    expect(body.requested).toBe(true);
    expect(body.leader).toMatch(/^a[12]$/);
  });

  it("shapes a plan with moves: every move with its reason, counted by reason", () => {
    const plan = {
      ops: [
        { op: "revoke", stream: "7", owner: "a1", next: "a2", reason: "manual" },
        { op: "put", row: {}, bump: "a2", reason: "catalog", from: null },
      ],
      bump: new Set(["a1", "a2"]),
      result: {
        assignment: new Map(),
        moves: [
          { stream: "7", from: "a1", to: "a2", reason: "manual" },
          { stream: "x-9", from: null, to: "a2", reason: "catalog" },
          { stream: "8", from: "a1", to: null, reason: "manual" },
        ],
        unassigned: ["8"],
        targets: new Map([["a2", 2], ["a1", 1]]),
        rebalanced: true,
        imbalanceBefore: { ratio: 1, streams: 2 },
      },
      waiting: ["5"],
      hashedMembers: new Set(),
      hashedOwned: 0,
      pool: [],
      statuses: new Map(),
    } as unknown as Plan;
    const body = planBody.parse(shapePlan(plan, 4));
    expect(body.moves).toEqual([
      { stream_id: 7, from: "a1", to: "a2", reason: "manual" },
      { stream_id: "x-9", from: null, to: "a2", reason: "catalog" },
      { stream_id: 8, from: "a1", to: null, reason: "manual" },
    ]);
    expect(body.by_reason).toEqual({ manual: 2, catalog: 1 });
    expect(body.targets).toEqual({ a1: 1, a2: 2 });
    expect(body).toMatchObject({ epoch: 4, would_rebalance: true, unassigned: [8], waiting: [5], ops: { put: 1, revoke: 1, retarget: 0, delete: 0 } });
    expect(body.message).toMatch(/3 stream move/);
  });

  it("counts admin calls by action and result in /metrics", async () => {
    const text = (await call(a1.app, "GET", "/metrics")).body as string;
    expect(text).toMatch(/fingerv7_admin_requests_total\{action="mode",result="unauthorized",instance="a1"\} [1-9]/);
    expect(text).toMatch(/fingerv7_admin_requests_total\{action="drain",result="not_found",instance="a1"\} [1-9]/);
    expect(text).toMatch(/fingerv7_admin_requests_total\{action="dry_run",result="ok",instance="a1"\} 1/);
  });
});
