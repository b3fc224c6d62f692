/**
 * GET /health: this agent and its dependencies. 200 when healthy, 503 when not.
 * Unhealthy: Postgres or Redis unreachable, heartbeats failing, or (client-go's check)
 * this agent believes it leads but has not renewed its lease in time.
 */
import { Hono } from "hono";
import { redactUrl } from "../../shared/config.js";
import { SOFTWARE_VERSION } from "../../shared/types.js";
import type { Agent } from "../agent.js";
import { loadView } from "./operator.js";

async function probe(fn: () => Promise<unknown>, timeoutMs: number): Promise<{ ok: boolean; response_ms: number; error?: string }> {
  const t0 = performance.now();
  try {
    await Promise.race([fn(), new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref())]);
    return { ok: true, response_ms: Math.round((performance.now() - t0) * 10) / 10 };
  } catch (err) {
    return { ok: false, response_ms: Math.round(performance.now() - t0), error: redactUrl(err instanceof Error ? err.message : String(err)) };
  }
}

type ProbeResult = Awaited<ReturnType<typeof probe>>;

export function healthRoutes(agent: Agent, startedAt: number): Hono {
  const app = new Hono();
  // One probe of each dependency at a time, shared by concurrent /health calls: a health
  // checker polling hard while PostgreSQL is down must not pile queries up.
  let inflight: Promise<[ProbeResult, ProbeResult]> | undefined;
  const probes = () =>
    (inflight ??= Promise.all([probe(() => agent.opsSql`select 1`, 1500), probe(() => agent.redis.ping(), 1500)]).finally(() => {
      inflight = undefined;
    }));
  app.get("/health", async (c) => {
    const [postgres, redis] = await probes();
    const leader = agent.leaderInfo;
    const electorHealthy = agent.elector.healthy();
    const worker = agent.workerHealth();
    const healthy = postgres.ok && redis.ok && electorHealthy && agent.heartbeatHealthy;
    // The cluster at a glance (instances by state, streams assigned/unassigned), when readable.
    let cluster: Record<string, unknown> | null = null;
    if (postgres.ok) {
      try {
        const v = await loadView(agent, { events: 1 });
        cluster = { instances: v.counts, streams: v.streams };
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
      heartbeat: { ok: agent.heartbeatHealthy, error: agent.heartbeatError ?? null },
      dependencies: { postgres, redis },
      worker: { ok: worker.ok, last_seen_ms_ago: worker.lastSeenMsAgo, kind: worker.kind },
      cluster,
      streams: { served: agent.serving.streams.length, held: agent.serving.held().length, lease_ms: Math.max(0, Math.round(agent.serving.leaseDeadline - agent.clock.now())) },
    };
    return c.json(body, healthy ? 200 : 503);
  });
  return app;
}
