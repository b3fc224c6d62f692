/**
 * createApp(agent) → a Hono app. Thin: handlers read the agent and shared state; only
 * main.ts listens on a port. Tests call `app.request()`.
 */
import { Hono } from "hono";
import type { Agent } from "../agent.js";
import { adminRoutes } from "./admin.js";
import { dashboardRoutes } from "./dashboard.js";
import { jsonError } from "./errors.js";
import { healthRoutes } from "./health.js";
import { legacyRoutes } from "./legacy.js";
import { metricsRoutes } from "./metrics.js";
import { operatorRoutes } from "./operator.js";
import { streamRoutes } from "./streams.js";
import { workerRoutes } from "./worker.js";
import { workerOnly } from "./worker-only.js";

/** Every route of both worker APIs. */
export const WORKER_PATHS = ["/v1/assignment", "/v1/report", "/api/workers/register", "/api/heartbeat", "/api/streams/assign", "/streams/release", "/api/streams/update", "/api/workers"] as const;

export function createApp(agent: Agent): Hono {
  const app = new Hono();
  const startedAt = agent.clock.now();

  app.use("*", async (c, next) => {
    const t0 = agent.clock.now();
    await next();
    const route = c.req.routePath || "unmatched";
    agent.metrics.httpRequests.inc({ route, method: c.req.method, status: String(c.res.status) });
    agent.metrics.httpSeconds.observe({ route }, (agent.clock.now() - t0) / 1000);
  });

  // Worker-facing routes answer only the worker beside this agent (WORKER_ALLOW).
  const onlyWorker = workerOnly({ allow: agent.config.workerAllow });
  for (const path of WORKER_PATHS) app.use(path, onlyWorker);
  app.route("/", workerRoutes(agent));
  app.route("/", legacyRoutes(agent));
  app.route("/", healthRoutes(agent, startedAt));
  app.route("/", operatorRoutes(agent));
  app.route("/", adminRoutes(agent));
  app.route("/", streamRoutes(agent));
  app.route("/", metricsRoutes(agent));
  app.route("/", dashboardRoutes(agent));

  app.notFound((c) => jsonError(c, 404, `No route ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => {
    agent.logger.error({ err, category: "ERROR", path: c.req.path }, "request failed");
    return jsonError(c, 500, "Internal error; see the agent's log");
  });
  return app;
}
