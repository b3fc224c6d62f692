/**
 * Read-only operator endpoints. Every agent answers for the whole cluster (shared/status.ts
 * joins Postgres, the Redis heartbeats this agent tracks, and the catalog):
 *
 * GET /status          the cluster in one object: leader, epoch, mode flag, instance counts
 *                      by state, stream totals, the last rebalance and its reason.
 * GET /instances       every instance with its state, load and worker health, and a summary.
 * GET /streams/status  stream totals, who serves which ids, unassigned ids, recent changes
 *                      with their reasons (?limit=N changes, default 50).
 *
 * A Postgres or Redis failure is a 503 with a redacted message, never a 500.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { presentId } from "../../shared/catalog.js";
import { FailureMemo, redactText } from "../../shared/logger.js";
import {
  type ClusterView,
  type InstancesBody,
  type StatusBody,
  type StreamsStatusBody,
} from "../../shared/status.js";
import type { AssignMember } from "../../shared/placement/assignor.js";
import { computeTargets, measureImbalance } from "../../shared/placement/targets.js";
import type { Agent } from "../agent.js";
import { jsonError } from "./errors.js";
import { instanceId, validParam, validQuery } from "./validate.js";

/** Reads the shared state and joins it (agent/operator-actions.ts). */
export function loadView(agent: Agent, opts: { events?: number } = {}): Promise<ClusterView> {
  return agent.operator.view(opts);
}

export function statusBody(agent: Agent, v: ClusterView): StatusBody {
  return {
    generated_at: v.generatedAt,
    answered_by: agent.id,
    leader: v.leader,
    epoch: v.epoch,
    mode: v.flag.mode,
    mode_version: v.flag.version,
    mode_updated_at: v.flag.updatedAt,
    mode_updated_by: v.flag.updatedBy,
    instances: v.counts,
    streams: v.streams,
    last_rebalance: v.lastRebalance,
    catalog_error: v.catalogError === null ? null : redactText(v.catalogError),
  };
}

/**
 * The summary over live members. `system_imbalance` is the same measure the leader's
 * threshold is compared with (shared/placement/targets.ts: max |load − target| / target), so an
 * operator can read it against IMBALANCE_THRESHOLD directly.
 */
export function instancesBody(agent: Agent, v: ClusterView): InstancesBody {
  const live = v.instances.filter((i) => i.status === "active" || i.status === "warning" || i.status === "recovering" || i.status === "draining");
  const pool: AssignMember[] = live
    .filter((i) => i.mode !== "hashed")
    .map((i) => ({ id: i.instance_id, capacity: i.max_streams, draining: i.status === "draining" }));
  const load = new Map(live.map((i) => [i.instance_id, i.current_streams]));
  const poolStreams = pool.reduce((s, m) => s + (load.get(m.id) ?? 0), 0) + v.streams.unassigned;
  const targets = computeTargets(poolStreams, pool, load);
  const imbalance = measureImbalance(pool, load, targets);
  const serving = live.filter((i) => i.status !== "draining" && i.max_streams > 0);
  const capacity = serving.reduce((s, i) => s + i.max_streams, 0);
  const average = serving.length > 0 ? serving.reduce((s, i) => s + i.load_percentage, 0) / serving.length : 0;
  return {
    generated_at: v.generatedAt,
    instances: v.instances,
    summary: {
      total_instances: v.instances.length,
      live_instances: live.length,
      total_capacity: capacity,
      total_assigned: v.streams.assigned,
      average_load: Math.round(average * 10) / 10,
      system_imbalance: Math.round(imbalance.ratio * 1000) / 1000,
      max_stream_difference: imbalance.streams,
      imbalance_threshold: agent.config.imbalanceThreshold,
    },
  };
}

export function streamsBody(v: ClusterView): StreamsStatusBody {
  return {
    generated_at: v.generatedAt,
    mode: v.flag.mode,
    streams: v.streams,
    distribution: v.instances
      .filter((i) => (v.owned.get(i.instance_id)?.length ?? 0) > 0 || (i.status !== "removed" && i.status !== "inactive"))
      .map((i) => {
        const ids = v.owned.get(i.instance_id) ?? [];
        const states = v.states.get(i.instance_id) ?? {};
        const stream_states = Object.fromEntries(Object.entries(states).map(([sid, st]) => [sid, st.e ? { status: st.s, error: redactText(st.e) } : { status: st.s }]));
        const shown = ids.map(presentId);
        return { instance_id: i.instance_id, status: i.status, max_streams: i.max_streams, count: ids.length, streams: shown, stream_states, assigned_streams: ids.length, stream_ids: shown, last_updated: i.last_heartbeat };
      }),
    unassigned: v.unassigned.map(presentId),
    recent_changes: v.events,
    catalog_error: v.catalogError === null ? null : redactText(v.catalogError),
    health: v.health.counts,
    failing_streams: v.health.failing.map((f) => ({ ...f, error: f.error === null ? null : redactText(f.error) })),
    quarantined_streams: v.health.quarantined.map((q) => ({ ...q, error: q.error === null ? null : redactText(q.error) })),
    unknown_streams: v.health.unknown.map(presentId),
  };
}

const limitQuery = z.object({ limit: z.coerce.number().int().min(0).max(1000).optional() });

export function operatorRoutes(agent: Agent): Hono {
  const app = new Hono();
  const failure = new FailureMemo();
  const unreadable = (c: Context, err: unknown) => {
    // Once per distinct failure: a monitor polling /status during an outage must not flood the log.
    if (failure.failed(err)) agent.logger.warn({ err, category: "ERROR", path: c.req.path }, "cluster state read failed");
    return jsonError(c, 503, `Cannot read the cluster state: ${redactText(failure.message ?? "")}`);
  };
  const answer = async (c: Context, build: () => Promise<unknown>) => {
    try {
      const body = await build();
      failure.succeeded();
      return c.json(body);
    } catch (err) {
      return unreadable(c, err);
    }
  };

  app.get("/status", (c) => answer(c, async () => statusBody(agent, await loadView(agent, { events: 0 }))));

  app.get("/instances", (c) => answer(c, async () => instancesBody(agent, await loadView(agent, { events: 0 }))));

  app.get("/instances/:id", validParam(z.object({ id: instanceId }), "instance id"), async (c) => {
    const { id } = c.req.valid("param");
    let view: ClusterView;
    try {
      view = await loadView(agent, { events: 0 });
    } catch (err) {
      return unreadable(c, err);
    }
    const found = view.instances.find((i) => i.instance_id === id);
    if (!found) return jsonError(c, 404, `Unknown instance ${id}`);
    const streams = (view.owned.get(id) ?? []).map(presentId);
    return c.json({ generated_at: view.generatedAt, instance: found, streams });
  });

  app.get("/streams/status", validQuery(limitQuery), (c) => {
    const { limit } = c.req.valid("query");
    return answer(c, async () => streamsBody(await loadView(agent, { events: limit ?? 50 })));
  });

  return app;
}
