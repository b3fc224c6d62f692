/**
 * In-process agents for the operator-surface tests: real Agents on a real Postgres and
 * Redis, each with its Hono app, optionally listening on a free port (for fingerctl and the
 * browser). No simulated workers: REQUIRE_WORKER=false, so rows are assigned anyway.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { Hono } from "hono";
import type { Agent } from "../../agent/agent.js";
import { createApp } from "../../agent/http/app.js";
import type { Logger } from "../../shared/logger.js";
import { newAgent } from "../helpers/agents.js";
import { waitFor } from "../helpers/cluster.js";

export const TOKEN = "change-me-admin-token";

export interface RunningAgent {
  readonly id: string;
  readonly agent: Agent;
  readonly app: Hono;
  /** Set when listening. */
  url: string;
  close(): Promise<void>;
}

export interface AgentOptions {
  readonly id: string;
  readonly databaseUrl: string;
  readonly prefix: string;
  readonly capacity?: number;
  readonly env?: Record<string, string>;
  readonly listen?: boolean;
  readonly logger?: Logger;
}

type Server = ReturnType<typeof serve>;

export async function startAgent(o: AgentOptions): Promise<RunningAgent> {
  const agent = newAgent({ id: o.id, databaseUrl: o.databaseUrl, prefix: o.prefix, logger: o.logger, env: { MAX_STREAMS: String(o.capacity ?? 20), ...o.env } });
  const app = createApp(agent);
  await agent.start();
  let server: Server | undefined;
  let url = "";
  if (o.listen) {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
    server = s;
    await new Promise<void>((resolve) => (s.listening ? resolve() : s.once("listening", () => resolve())));
    url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }
  let closed = false;
  return {
    id: o.id,
    agent,
    app,
    url,
    async close() {
      if (closed) return;
      closed = true;
      if (server) {
        const s = server as Server & { closeAllConnections?: () => void };
        s.closeAllConnections?.();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
      await agent.close();
    },
  };
}

/** GET/POST through the app (no port), returning status and parsed JSON. */
export async function call(
  app: Hono,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers["content-type"] ??= "application/json";
  const res = await app.request(path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (the dashboard page, /metrics): keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/**
 * Waits until, according to `app`'s /status, every active stream has an owner, nothing is
 * in handoff, a leader is ready and (when given) `active` instances are active.
 */
export async function waitSettled(app: Hono, streams: number, what = "every stream to be assigned", active?: number): Promise<void> {
  await waitFor(
    async () => {
      const r = await call(app, "GET", "/status");
      if (r.status !== 200) return false;
      const b = r.body;
      if (active !== undefined && b.instances.active !== active) return false;
      return b.streams.assigned === streams && b.streams.unassigned === 0 && b.streams.revoking === 0 && b.leader?.ready === true;
    },
    45_000,
    what,
    100,
  );
}

/** Waits until /instances shows exactly these stream counts (e.g. { a1: 15, a2: 15 }). */
export async function waitCounts(app: Hono, counts: Record<string, number>, what = "the expected distribution"): Promise<void> {
  await waitFor(
    async () => {
      const r = await call(app, "GET", "/instances");
      if (r.status !== 200) return false;
      const got = Object.fromEntries((r.body.instances as { instance_id: string; current_streams: number; revoking_streams: number }[]).filter((i) => i.instance_id in counts).map((i) => [i.instance_id, i.revoking_streams > 0 ? -1 : i.current_streams]));
      return Object.entries(counts).every(([id, n]) => got[id] === n);
    },
    45_000,
    what,
    100,
  );
}
