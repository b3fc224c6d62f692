/**
 * POST /rebalance?dry_run=1 predicts the next forced tick: two in-process agents on a real
 * PostgreSQL and Redis, a legacy member (no sidecar) owning a third of the catalog, and an
 * imbalance the calm policy leaves alone. The dry run (from either agent) lists exactly the
 * moves and targets the leader then carries out when asked to rebalance.
 *
 * No workers: REQUIRE_WORKER=false, so handoffs finish as soon as the owner's heartbeat
 * shows the revoke's version.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../agent/agent.js";
import { legacyServerFor } from "../../shared/legacy.js";
import type { Plan } from "../../shared/placement/plan.js";
import { newAgent } from "../helpers/agents.js";
import { waitFor } from "../helpers/cluster.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";

const ENV = {
  MAX_STREAMS: "15",
  LEGACY_TOTAL_SERVERS: "3",
  // Calm: loads 15 and 5 against targets of 10 (ratio 0.5) are left alone.
  IMBALANCE_THRESHOLD: "0.99",
  MAX_STREAM_DIFFERENCE: "1000",
  REBALANCE_COOLDOWN: "3600",
};

describe("the dry run predicts the forced rebalance", { timeout: 90_000 }, () => {
  let db: TestDatabase;
  const agents: Agent[] = [];
  const prefix = uniqueName("dryrun");

  async function owners(): Promise<Map<string, string>> {
    const rows = await db.sql`select stream_id, instance_id from orchestrator.assignments where state = 'active'`;
    return new Map(rows.map((r) => [r.stream_id as string, r.instance_id as string]));
  }
  const moves = (p: Plan) =>
    p.result.moves
      .map((m) => `${m.stream}:${m.from}>${m.to}:${m.reason}`)
      .sort();

  beforeAll(async () => {
    db = await createTestDatabase("dryrun");
    await createCatalog(db.sql, 30);
    await db.sql.unsafe("create table server_heartbeats (server_id varchar primary key, last_heartbeat timestamptz, status varchar, ip_address varchar, info jsonb)");
    await db.sql`insert into server_heartbeats (server_id, last_heartbeat, status) values ('3', now(), 'online')`;
  });

  afterAll(async () => {
    await Promise.allSettled(agents.map((a) => a.close()));
    await db?.drop();
  });

  it("lists the moves and targets the next forced tick carries out, legacy streams left alone", async () => {
    const legacyStreams = new Set(Array.from({ length: 30 }, (_, i) => String(i + 1)).filter((id) => legacyServerFor(id, 3) === "3"));
    expect(legacyStreams.size).toBe(10);

    const a = newAgent({ id: "1", databaseUrl: db.url, prefix, env: ENV });
    agents.push(a);
    await a.start();
    await waitFor(() => a.elector.isLeader(), 30_000, "agent 1 to lead");
    await waitFor(async () => (await owners()).size === 15, 30_000, "agent 1 to fill up: 15 of the 20 non-legacy streams");

    const b = newAgent({ id: "2", databaseUrl: db.url, prefix, env: ENV });
    agents.push(b);
    await b.start();
    // Agent 2 gets the 5 unplaced streams; the calm policy moves nothing else.
    await waitFor(async () => b.ownAssignment?.stampedSession === b.sessionNow && b.mode === "orchestrated" && (await owners()).size === 20, 30_000, "agent 2 to follow the leader");
    const settledAt = Date.now();
    await waitFor(() => Date.now() - settledAt > 1500, 5_000, "a few quiet ticks");
    const before = await owners();
    expect([...before.values()].filter((o) => o === "1").length).toBe(15);

    const dry = await b.operator.dryRunRebalance();
    const dryOnLeader = await a.operator.dryRunRebalance();
    expect(moves(dryOnLeader)).toEqual(moves(dry));
    expect(dry.legacyOwned).toBe(10);
    expect(dry.result.moves.length).toBe(5);
    expect(dry.result.moves.every((m) => m.from === "1" && m.to === "2" && m.reason === "manual" && !legacyStreams.has(m.stream))).toBe(true);
    expect(Object.fromEntries(dry.result.targets)).toEqual({ "1": 10, "2": 10 });
    // The legacy streams stay out of the pool, as in the tick.
    expect(dry.result.assignment.size).toBe(20);

    const since = (await db.sql`select coalesce(max(id), 0)::int as id from orchestrator.events`)[0]!.id as number;
    b.operator.requestRebalance(); // published: the leader rebalances on its next tick
    await waitFor(async () => {
      const o = await owners();
      return o.size === 20 && [...o.values()].filter((x) => x === "2").length === 10;
    }, 30_000, "the forced rebalance to complete");

    const revoked = await db.sql`select stream_id, from_instance, to_instance, reason from orchestrator.events where id > ${since} and kind = 'revoke' order by stream_id`;
    expect(revoked.map((r) => `${r.stream_id}:${r.from_instance}>${r.to_instance}:${r.reason}`).sort()).toEqual(moves(dry));
    const after = await owners();
    const counts: Record<string, number> = {};
    for (const o of after.values()) counts[o] = (counts[o] ?? 0) + 1;
    expect(counts).toEqual(Object.fromEntries(dry.result.targets));
    for (const m of dry.result.moves) expect(after.get(m.stream)).toBe(m.to);
  });
});
