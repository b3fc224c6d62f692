/**
 * Stream health for operators (any agent answers, from PostgreSQL and its view):
 *
 * GET /streams/:id            one stream: owner, state, health, last success and error,
 *                             the failures it is charged with, recent moves, quarantine,
 *                             placement constraint; 404 for an id the catalog has not.
 * GET /health/streams?minutes=60
 *                             served-and-healthy streams, one sample a minute (24 h kept).
 *
 * Registered after GET /streams/status (agent/http/operator.ts), which therefore wins for
 * that one path. A PostgreSQL failure is a 503 with a redacted message, never a 500.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { redactText } from "../../shared/logger.js";
import { samplesBody } from "../../shared/status-health.js";
import type { Agent } from "../agent.js";
import { jsonError } from "./errors.js";
import { streamIdParam, validParam, validQuery } from "./validate.js";

const minutesQuery = z.object({ minutes: z.coerce.number().int().min(1).max(1440).optional() });

export function streamRoutes(agent: Agent): Hono {
  const app = new Hono();
  const unreadable = (c: Context, err: unknown) => {
    agent.logger.warn({ err, category: "ERROR", path: c.req.path }, "stream health read failed");
    return jsonError(c, 503, `Cannot read stream health: ${redactText(err instanceof Error ? err.message : String(err))}`);
  };

  app.get("/health/streams", validQuery(minutesQuery), async (c) => {
    const minutes = c.req.valid("query").minutes ?? 60;
    try {
      return c.json(samplesBody(minutes, await agent.operator.healthSamples(minutes)));
    } catch (err) {
      return unreadable(c, err);
    }
  });

  app.get("/streams/:id", validParam(z.object({ id: streamIdParam }), "stream id"), async (c) => {
    const { id } = c.req.valid("param");
    try {
      const body = await agent.operator.stream(id);
      if (!body) return jsonError(c, 404, `Unknown stream ${id} (no active stream of that id in the catalog)`);
      return c.json({ ...body, last_error: body.last_error === null ? null : redactText(body.last_error) });
    } catch (err) {
      return unreadable(c, err);
    }
  });

  return app;
}
