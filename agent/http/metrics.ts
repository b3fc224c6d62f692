/**
 * GET /metrics: Prometheus text from this agent's private registry (shared/metrics.ts).
 *
 * Gauges that describe "now" are refreshed at scrape time from what this agent already
 * holds in memory (no Postgres or Redis round trip, so a scrape never stalls). Cluster-wide
 * stream counts are exported by the leader only: a former leader drops them, so summing
 * or alerting across agents never counts a stale copy.
 */
import { Hono } from "hono";
import type { Agent } from "../agent.js";

const MEMBER_STATES = ["alive", "warning", "dead", "left"] as const;

export function refreshGauges(agent: Agent): void {
  const m = agent.metrics;
  const leading = agent.elector.isLeader();
  m.isLeader.set(leading ? 1 : 0);
  if (!leading) m.clusterStreams.reset();
  const leader = agent.leaderInfo;
  if (leader && leader.epoch > 0) m.epoch.set(leader.epoch);
  const w = agent.worker.summary();
  m.streamsServed.set(w.offered);
  m.streamsHeld.set(w.held);
  m.leaseRemaining.set(w.leaseMs / 1000);
  for (const mode of ["orchestrated", "hashed"] as const) m.mode.set({ mode }, mode === agent.mode ? 1 : 0);
  const snap = agent.membership;
  if (snap) {
    const counts: Record<string, number> = Object.fromEntries(MEMBER_STATES.map((s) => [s, 0]));
    for (const v of snap.members.values()) counts[v.status] = (counts[v.status] ?? 0) + 1;
    for (const s of MEMBER_STATES) m.clusterMembers.set({ state: s }, counts[s] ?? 0);
  }
}

export function metricsRoutes(agent: Agent): Hono {
  const app = new Hono();
  app.get("/metrics", async (c) => {
    refreshGauges(agent);
    const body = await agent.metrics.registry.metrics();
    return c.body(body, 200, { "content-type": agent.metrics.registry.contentType, "cache-control": "no-store" });
  });
  return app;
}
