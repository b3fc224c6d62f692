/**
 * GET /health: this agent and its dependencies. 200 when healthy, 503 when not (readiness).
 * GET /health/live: 200 while the process answers (liveness).
 * Unhealthy: Postgres or Redis unreachable, heartbeats failing, or (client-go's check)
 * this agent believes it leads but has not renewed its lease in time.
 */
import { Hono } from "hono";
import { redactUrl } from "../../shared/config.js";
import { SOFTWARE_VERSION } from "../../shared/types.js";
import type { Agent } from "../agent.js";

/** How long /health waits for each dependency's answer. */
const PROBE_TIMEOUT_MS = 1500;

type Probes = Awaited<ReturnType<Agent["probeDependencies"]>>;

export function healthRoutes(agent: Agent, startedAt: number): Hono {
  const app = new Hono();
  // One probe of each dependency at a time, shared by concurrent /health calls: a health
  // checker polling hard while PostgreSQL is down must not pile queries up.
  let inflight: Promise<Probes> | undefined;
  const probes = () =>
    (inflight ??= agent.probeDependencies(PROBE_TIMEOUT_MS).finally(() => {
      inflight = undefined;
    }));
  // Liveness only: the process answers. No dependency is probed, so an outage of
  // PostgreSQL or Redis never makes a liveness probe restart the agent (a restart fixes
  // neither, and would end ON_COORDINATION_LOSS=keep's serving).
  app.get("/health/live", (c) => c.json({ status: "alive", instance_id: agent.id, uptime_s: Math.round((agent.clock.now() - startedAt) / 100) / 10 }));
  app.get("/health", async (c) => {
    const found = await probes();
    const redact = (p: Probes["postgres"]) => (p.error === undefined ? p : { ...p, error: redactUrl(p.error) });
    const postgres = redact(found.postgres);
    const redis = redact(found.redis);
    const leader = agent.leaderInfo;
    const electorHealthy = agent.elector.healthy();
    const worker = agent.worker.health();
    const healthy = postgres.ok && redis.ok && electorHealthy && agent.heartbeatHealthy;
    // The cluster at a glance (instances by state, streams assigned/unassigned), when readable.
    let cluster: Record<string, unknown> | null = null;
    // The documents' top-level counts (null while the cluster state is unreadable).
    let instances: { total: number; active: number; inactive: number; warning: number } | null = null;
    let totals: { total: number; assigned: number; unassigned: number; processing: number } | null = null;
    if (postgres.ok) {
      try {
        const v = await agent.operator.view({ events: 1 });
        cluster = { instances: v.counts, streams: v.streams };
        instances = { total: v.counts.total, active: v.counts.active, inactive: v.counts.inactive, warning: v.counts.warning };
        // Processing: streams some live worker reports holding right now.
        const processing = v.instances.reduce((n, i) => n + i.held_streams, 0);
        totals = { total: v.streams.active, assigned: v.streams.assigned, unassigned: v.streams.unassigned, processing };
      } catch {
        cluster = null; // the dependency probes above already say what is wrong
      }
    }
    const body = {
      status: healthy ? "healthy" : "unhealthy",
      instance_id: agent.id,
      version: SOFTWARE_VERSION,
      uptime_s: Math.round((agent.clock.now() - startedAt) / 100) / 10,
      mode: agent.mode,
      mode_reason: agent.modeExplanation,
      leader: leader?.id ?? null,
      epoch: leader?.epoch ?? null,
      is_leader: agent.elector.isLeader(),
      leader_lease_healthy: electorHealthy,
      heartbeat: (({ redis: r, postgres: p, postgresError }) => ({ ok: agent.heartbeatHealthy, error: agent.heartbeatError ?? null, channels: { redis: r, postgres: p }, postgres_error: postgresError === undefined ? null : redactUrl(postgresError) }))(agent.heartbeatChannels),
      dependencies: { postgres, redis },
      worker: { ok: worker.ok, last_seen_ms_ago: worker.lastSeenMsAgo, kind: worker.kind },
      cluster,
      instances,
      // This agent's worker (served, held, lease_ms) and the cluster's totals (the documents' fields).
      streams: (({ offered, held, leaseMs }) => ({ served: offered, held, lease_ms: leaseMs, total: totals?.total ?? null, assigned: totals?.assigned ?? null, unassigned: totals?.unassigned ?? null, processing: totals?.processing ?? null }))(agent.worker.summary()),
    };
    return c.json(body, healthy ? 200 : 503);
  });
  return app;
}
