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
import { liveIds } from "../../shared/member-state.js";
import { redactText } from "../../shared/logger.js";
import {
  clusterView,
  readShared,
  type ClusterView,
  type SharedRows,
  type InstancesBody,
  type StatusBody,
  type StreamsStatusBody,
} from "../../shared/status.js";
import type { AssignMember } from "../../shared/placement/assignor.js";
import { computeTargets, measureImbalance } from "../../shared/placement/targets.js";
import type { Agent } from "../agent.js";
import { describeIssues, jsonError } from "./errors.js";

/**
 * Concurrent operator reads share one query in flight (per agent and events limit): the
 * agent's small Postgres pool also carries its own assignment reads and the leader's
 * fenced writes, and a burst of status calls must not queue in front of them.
 */
const inflight = new WeakMap<Agent, Map<number, Promise<SharedRows>>>();

function sharedRows(agent: Agent, events: number): Promise<SharedRows> {
  let byLimit = inflight.get(agent);
  if (!byLimit) inflight.set(agent, (byLimit = new Map()));
  let p = byLimit.get(events);
  if (!p) {
    const map = byLimit;
    p = readShared(agent.opsSql, agent.config.schema, { events }).finally(() => map.delete(events));
    map.set(events, p);
  }
  return p;
}

/** Reads the shared state and joins it. Throws when Postgres (or, with no view yet, Redis) is unreachable. */
export async function loadView(agent: Agent, opts: { events?: number } = {}): Promise<ClusterView> {
  const snapshot = agent.tracker.latest ?? (await agent.tracker.refresh());
  const [rows, catalog] = await Promise.all([sharedRows(agent, opts.events ?? 50), agent.catalog.get(agent.config.catalogRefreshMs)]);
  const legacy = agent.legacy.enabled && catalog ? await agent.legacy.read(catalog.streams, liveIds(snapshot.members.values())) : undefined;
  return clusterView({ rows, snapshot, catalog, catalogError: agent.catalog.lastError, leader: agent.leaderInfo, nowWall: agent.clock.wall(), legacy });
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
        return { instance_id: i.instance_id, status: i.status, max_streams: i.max_streams, count: ids.length, streams: ids.map(presentId), stream_states };
      }),
    unassigned: v.unassigned.map(presentId),
    recent_changes: v.events,
    catalog_error: v.catalogError === null ? null : redactText(v.catalogError),
  };
}

const limitQuery = z.object({ limit: z.coerce.number().int().min(0).max(1000).optional() });
const idParam = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, "an instance id: 1-128 letters, digits or . _ : @ -");

export function operatorRoutes(agent: Agent): Hono {
  const app = new Hono();
  let lastFailure: string | undefined;
  const answer = async (c: Context, _agent: Agent, build: () => Promise<unknown>) => {
    try {
      const body = await build();
      lastFailure = undefined;
      return c.json(body);
    } catch (err) {
      const msg = redactText(err instanceof Error ? err.message : String(err));
      // Once per distinct failure: a monitor polling /status during an outage must not flood the log.
      if (msg !== lastFailure) agent.logger.warn({ err, category: "ERROR", path: c.req.path }, "cluster state read failed");
      lastFailure = msg;
      return jsonError(c, 503, `Cannot read the cluster state: ${msg}`);
    }
  };

  app.get("/status", async (c) => {
    return answer(c, agent, async () => statusBody(agent, await loadView(agent, { events: 0 })));
  });

  app.get("/instances", async (c) => {
    return answer(c, agent, async () => instancesBody(agent, await loadView(agent, { events: 0 })));
  });

  app.get("/instances/:id", async (c) => {
    const p = idParam.safeParse(c.req.param("id"));
    if (!p.success) return jsonError(c, 400, `Bad instance id: ${describeIssues(p.error.issues)}`);
    let view: ClusterView;
    try {
      view = await loadView(agent, { events: 0 });
    } catch (err) {
      return jsonError(c, 503, `Cannot read the cluster state: ${redactText(err instanceof Error ? err.message : String(err))}`);
    }
    const found = view.instances.find((i) => i.instance_id === p.data);
    if (!found) return jsonError(c, 404, `Unknown instance ${p.data}`);
    const streams = (view.owned.get(p.data) ?? []).map(presentId);
    return c.json({ generated_at: view.generatedAt, instance: found, streams });
  });

  app.get("/streams/status", async (c) => {
    const q = limitQuery.safeParse(c.req.query());
    if (!q.success) return jsonError(c, 400, `Bad query: ${describeIssues(q.error.issues)}`);
    return answer(c, agent, async () => streamsBody(await loadView(agent, { events: q.data.limit ?? 50 })));
  });

  return app;
}
