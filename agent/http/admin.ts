/**
 * Admin endpoints: they change the cluster, so they need `Authorization: Bearer ADMIN_TOKEN`.
 *
 *   POST /instances/:id/drain     stop giving the instance streams and move its streams away
 *   POST /instances/:id/undrain   let it serve again
 *   POST /rebalance[?dry_run=1]   rebalance to the targets now; dry run = the plan, nothing changed
 *   PUT  /mode {"mode": "orchestrated" | "hashed", "by"?: "name"}   flip the cluster flag
 *   POST /streams/:id/retry       forget a stream's quarantine and failure memory; it is placed again
 *
 * Rules:
 * - Every route passes requireAdmin (require-admin.ts) first: no ADMIN_TOKEN means refused,
 *   and authentication comes before any validation, so an unauthenticated caller learns
 *   nothing about instances or bodies.
 * - Bad input is a 400 with a message, an unknown instance a 404; never a 500.
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { presentId } from "../../shared/catalog.js";
import { redactText } from "../../shared/logger.js";
import type { PlanBody } from "../../shared/status.js";
import type { Plan } from "../../shared/placement/plan.js";
import type { Agent } from "../agent.js";
import { describeIssues, jsonError } from "./errors.js";
import { requireAdmin } from "./require-admin.js";
import { instanceId, streamIdParam, validParam, validQuery } from "./validate.js";

/** Reads an optional JSON object body: empty → {}; anything else must be JSON. */
async function optionalJson(c: Context): Promise<{ ok: true; value: unknown } | { ok: false; message: string }> {
  let raw: string;
  try {
    raw = await c.req.text();
  } catch {
    return { ok: false, message: "Could not read the request body." };
  }
  if (raw.trim() === "") return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch {
    return { ok: false, message: "Body must be JSON (or empty)." };
  }
}

const idParam = z.object({ id: instanceId });
const drainBody = z.object({ reason: z.string().max(200).optional() }).strict();
const modeBody = z
  .object({
    mode: z.enum(["orchestrated", "hashed"], { error: 'mode must be "orchestrated" or "hashed"' }),
    by: z.string().min(1).max(64).regex(/^[^\n\r]*$/, "one line").optional(),
  })
  .strict();
const rebalanceQuery = z.object({ dry_run: z.enum(["", "0", "1", "true", "false", "yes", "no"], { error: "dry_run must be 1 or 0" }).optional() });
const rebalanceBody = z.object({}).strict();

export function planBody(p: Plan, epoch: number): PlanBody {
  const byReason: Record<string, number> = {};
  for (const m of p.result.moves) byReason[m.reason] = (byReason[m.reason] ?? 0) + 1;
  const ops = { put: 0, revoke: 0, retarget: 0, delete: 0 };
  for (const op of p.ops) ops[op.op]++;
  const n = p.result.moves.length;
  return {
    dry_run: true,
    epoch,
    would_rebalance: p.result.rebalanced,
    moves: p.result.moves.map((m) => ({ stream_id: presentId(m.stream), from: m.from, to: m.to, reason: m.reason })),
    by_reason: byReason,
    targets: Object.fromEntries([...p.result.targets].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
    unassigned: p.result.unassigned.map(presentId),
    waiting: p.waiting.map(presentId),
    ops,
    message: n === 0 ? "Nothing would move; nothing was changed." : `${n} stream move(s) would be made; nothing was changed.`,
  };
}

/** Admin bodies are a few bytes; refuse anything large before reading it. */
const ADMIN_BODY_LIMIT = 16 * 1024;

export function adminRoutes(agent: Agent): Hono {
  const app = new Hono();
  const auth = requireAdmin({ token: agent.config.adminToken, metrics: agent.metrics, logger: agent.logger });
  const limit = bodyLimit({ maxSize: ADMIN_BODY_LIMIT, onError: (c) => jsonError(c, 413, `Body too large (over ${ADMIN_BODY_LIMIT} bytes).`) });
  const failure = (c: Context, err: unknown, what: string) => {
    agent.logger.warn({ err, category: "ERROR", path: c.req.path }, `${what} failed`);
    return jsonError(c, 503, `${what} failed: ${redactText(err instanceof Error ? err.message : String(err))}`);
  };

  for (const draining of [true, false]) {
    app.post(`/instances/:id/${draining ? "drain" : "undrain"}`, auth, limit, validParam(idParam, "instance id"), async (c) => {
      const { id } = c.req.valid("param");
      const body = await optionalJson(c);
      if (!body.ok) return jsonError(c, 400, body.message);
      const parsed = drainBody.safeParse(body.value);
      if (!parsed.success) return jsonError(c, 400, `Bad body: ${describeIssues(parsed.error.issues)}`);
      let found: boolean;
      try {
        found = await agent.operator.setDraining(id, draining);
      } catch (err) {
        return failure(c, err, draining ? "Drain" : "Undrain");
      }
      if (!found) return jsonError(c, 404, `Unknown instance ${id}`);
      return c.json({
        instance_id: id,
        draining,
        message: draining
          ? `Instance ${id} is draining: it gets no new streams and the leader moves its streams away.`
          : `Instance ${id} is no longer draining: it may be given streams again.`,
      });
    });
  }

  app.post("/rebalance", auth, limit, validQuery(rebalanceQuery), async (c) => {
    const q = { data: c.req.valid("query") };
    const body = await optionalJson(c);
    if (!body.ok) return jsonError(c, 400, body.message);
    const parsed = rebalanceBody.safeParse(body.value);
    if (!parsed.success) return jsonError(c, 400, `Bad body: ${describeIssues(parsed.error.issues)} (POST /rebalance takes no body)`);
    const dryRun = /^(1|true|yes)$/.test(q.data.dry_run ?? "");
    if (dryRun) {
      try {
        const p = await agent.operator.dryRunRebalance();
        return c.json(planBody(p, agent.leaderInfo?.epoch ?? 0));
      } catch (err) {
        return failure(c, err, "Dry run");
      }
    }
    const leader = agent.leaderInfo;
    let flag: { mode: string };
    try {
      flag = await agent.operator.clusterFlag();
    } catch (err) {
      return failure(c, err, "Rebalance");
    }
    if (flag.mode === "hashed") {
      return jsonError(c, 409, "The cluster mode is hashed: streams are placed by hashing, so there is nothing to rebalance. Switch with PUT /mode first.");
    }
    if (!leader) return jsonError(c, 503, "No leader is elected right now, so nobody would act on a rebalance. Try again in a few seconds.");
    agent.operator.requestRebalance();
    agent.logger.info({ category: "BALANCE", leader: leader.id }, "rebalance requested by an operator");
    return c.json({ requested: true, leader: leader.id, message: `Rebalance requested; leader ${leader.id} rebalances on its next tick.` }, 202);
  });

  app.post("/streams/:id/retry", auth, limit, validParam(z.object({ id: streamIdParam }), "stream id"), async (c) => {
    const { id } = c.req.valid("param");
    const body = await optionalJson(c);
    if (!body.ok) return jsonError(c, 400, body.message);
    let found: boolean;
    try {
      found = await agent.operator.retryStream(id);
    } catch (err) {
      return failure(c, err, "Retry");
    }
    if (!found) return jsonError(c, 404, `Unknown stream ${id} (no active stream of that id in the catalog)`);
    const health = (await agent.operator.stream(id).catch(() => undefined))?.health ?? "unknown";
    return c.json({ ok: true as const, id: presentId(id), health, message: `Stream ${id}: quarantine and failure memory forgotten; the leader places it on its next tick.` });
  });

  app.put("/mode", auth, limit, async (c) => {
    const body = await optionalJson(c);
    if (!body.ok) return jsonError(c, 400, body.message);
    const parsed = modeBody.safeParse(body.value);
    if (!parsed.success) return jsonError(c, 400, `Bad body: ${describeIssues(parsed.error.issues)} (expected {"mode": "orchestrated" | "hashed"})`);
    try {
      const r = await agent.operator.setMode(parsed.data.mode, parsed.data.by ?? "admin-api");
      return c.json({
        mode: r.mode,
        version: r.version,
        changed: r.changed,
        message: r.changed ? `Cluster mode set to ${r.mode} (flag version ${r.version}).` : `Cluster mode was already ${r.mode}.`,
      });
    } catch (err) {
      return failure(c, err, "Setting the mode");
    }
  });

  return app;
}
