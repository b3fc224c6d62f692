/**
 * The live dashboard.
 *
 *   GET /                  the page (dashboard-page.ts: one document, no build step)
 *   GET /dashboard/state   { status, instances, streams }: the three operator views at once
 *   GET /dashboard/events  the same, pushed as server-sent events ("state") every second
 *
 * One cluster read serves every viewer for a short while (VIEW_TTL_MS), so ten open
 * dashboards cost about one query a second, not ten. The number of open event streams is
 * capped; each ends when its viewer goes away.
 */
import crypto from "node:crypto";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { redactText } from "../../shared/logger.js";
import type { Agent } from "../agent.js";
import { page, SCRIPT } from "./dashboard-page.js";
import { jsonError } from "./errors.js";
import { instancesBody, loadView, statusBody, streamsBody } from "./operator.js";

const VIEW_TTL_MS = 500;
const PUSH_EVERY_MS = 1000;
const MAX_STREAMS = 64;
const RECENT_CHANGES = 40;

const sha = (s: string) => `'sha256-${crypto.createHash("sha256").update(s, "utf8").digest("base64")}'`;
/** Only this page's own inline script and style may run; it talks only to this agent. */
const CSP = `default-src 'none'; script-src ${sha(SCRIPT)}; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

export interface DashboardState {
  readonly status: ReturnType<typeof statusBody>;
  readonly instances: ReturnType<typeof instancesBody>;
  readonly streams: ReturnType<typeof streamsBody>;
}

export function dashboardRoutes(agent: Agent): Hono {
  const app = new Hono();
  const html = page();
  let cached: { at: number; state: Promise<DashboardState> } | undefined;
  let open = 0;

  const state = (): Promise<DashboardState> => {
    const now = agent.clock.now();
    if (!cached || now - cached.at >= VIEW_TTL_MS) {
      const p = loadView(agent, { events: RECENT_CHANGES }).then((v) => ({ status: statusBody(agent, v), instances: instancesBody(agent, v), streams: streamsBody(v) }));
      cached = { at: now, state: p };
      p.catch(() => {
        // A failed read must not be served to the next viewer: drop it from the cache.
        if (cached?.state === p) cached = undefined;
      });
    }
    return cached.state;
  };
  const problem = (err: unknown) => `Cannot read the cluster state: ${redactText(err instanceof Error ? err.message : String(err))}`;

  app.get("/", (c) =>
    c.html(html, 200, { "content-security-policy": CSP, "cache-control": "no-store", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer" }),
  );

  app.get("/dashboard/state", async (c) => {
    try {
      return c.json(await state());
    } catch (err) {
      return jsonError(c, 503, problem(err));
    }
  });

  app.get("/dashboard/events", (c) => {
    if (open >= MAX_STREAMS) return jsonError(c, 503, `Too many open dashboards on this agent (${MAX_STREAMS}); close one or use another agent.`);
    open++;
    c.header("cache-control", "no-store");
    c.header("x-accel-buffering", "no");
    return streamSSE(c, async (stream) => {
      let aborted = false;
      const gone = new AbortController();
      stream.onAbort(() => {
        aborted = true;
        gone.abort();
      });
      try {
        let seq = 0;
        while (!aborted && !stream.aborted && !stream.closed) {
          try {
            await stream.writeSSE({ event: "state", id: String(++seq), data: JSON.stringify(await state()) });
          } catch (err) {
            if (aborted || stream.aborted || stream.closed) break;
            await stream.writeSSE({ event: "problem", data: JSON.stringify({ message: problem(err) }) }).catch(() => {});
          }
          await agent.clock.sleep(PUSH_EVERY_MS, gone.signal).catch(() => {});
        }
      } finally {
        open--;
      }
    });
  });

  return app;
}
