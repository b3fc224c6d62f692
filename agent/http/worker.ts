/**
 * The worker-facing API (for the fingerv7 process beside this agent).
 *
 * GET /v1/assignment[?version=V&wait=S]
 *   → { instance_id, mode, epoch, version, lease_ms, leader, streams: [{ id, url, name, metadata }] }
 *   With `version` and `wait`, long-polls until the version differs or S seconds pass
 *   (answered by when half the lease the worker counts is gone, and within a third of
 *   WORKER_LEASE: agent/worker-link.ts longPollMs).
 *   The worker MUST stop every stream when `lease_ms` runs out without a new answer,
 *   counting from when it SENT the request.
 * POST /v1/report { processed_count, error_count, streams: [{ id, status, error? }], rate_limited_until? }
 *   status: ok (a capture succeeded since the last report) | failed (with error) |
 *   processing (nothing yet); rate_limited_until: ISO time the worker's pause ends, or null.
 */
import { Hono } from "hono";
import { z } from "zod";
import { presentId } from "../../shared/catalog.js";
import type { Agent } from "../agent.js";
import type { Offer } from "../serving.js";
import type { Stream } from "../../shared/types.js";
import { validQuery } from "./validate.js";
import { describeIssues, jsonError, readJson } from "./errors.js";

const assignmentQuery = z.object({
  version: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  wait: z.coerce.number().min(0).max(300).optional(),
});

const reportBody = z.object({
  processed_count: z.number().int().min(0).optional(),
  error_count: z.number().int().min(0).optional(),
  streams: z
    .array(
      z.object({
        id: z.union([z.string().min(1).max(256), z.number().int()]),
        status: z.string().min(1).max(64),
        error: z.string().max(2000).optional(),
      }),
    )
    .max(100_000)
    .optional(),
  /** The worker is paused by the recognition service's rate limit until then; null: no longer. */
  rate_limited_until: z.iso.datetime({ offset: true, error: "rate_limited_until must be an ISO 8601 time such as 2026-01-01T12:00:00Z" }).nullable().optional(),
});

export function workerRoutes(agent: Agent): Hono {
  const app = new Hono();

  app.get("/v1/assignment", validQuery(assignmentQuery), async (c) => {
    const { version, wait } = c.req.valid("query");
    const offer = await agent.worker.assignment({ api: "v1", version, waitMs: wait === undefined ? undefined : wait * 1000, signal: c.req.raw.signal });
    return c.body(assignmentText(agent, offer), 200, { "Content-Type": "application/json" });
  });

  app.post("/v1/report", async (c) => {
    const body = await readJson(c);
    if (body === undefined) return jsonError(c, 400, "Body must be JSON: { processed_count, error_count, streams: [{ id, status, error? }] }");
    const parsed = reportBody.safeParse(body);
    if (!parsed.success) return jsonError(c, 400, `Bad report: ${describeIssues(parsed.error.issues)}`);
    const r = parsed.data;
    agent.worker.report(
      {
        processed: r.processed_count,
        errors: r.error_count,
        streams: r.streams?.map((s) => ({ id: String(s.id), status: s.status, error: s.error })),
        rateLimitedUntil: r.rate_limited_until,
      },
      "v1",
    );
    return c.json({ ok: true, instance_id: agent.id });
  });

  return app;
}

/** The /v1 answer for an offer (by default what the worker would be offered now). */
export function assignmentBody(agent: Agent, offer: Offer = agent.worker.offerNow()) {
  return { ...assignmentHead(agent, offer), streams: offer.streams.map(presentStream) };
}

/**
 * The /v1 answer as JSON text, the same as assignmentBody's: the streams' part is
 * encoded once per listing (an offer's streams are the agent's listed array, replaced
 * only when the listing changes), not at every answer.
 */
export function assignmentText(agent: Agent, offer: Offer): string {
  let streams = encodedStreams.get(offer.streams);
  if (streams === undefined) {
    streams = JSON.stringify(offer.streams.map(presentStream));
    encodedStreams.set(offer.streams, streams);
  }
  return `${JSON.stringify(assignmentHead(agent, offer)).slice(0, -1)},"streams":${streams}}`;
}

const encodedStreams = new WeakMap<readonly Stream[], string>();

function assignmentHead(agent: Agent, offer: Offer) {
  const leader = agent.leaderInfo;
  return {
    instance_id: agent.id,
    mode: agent.mode,
    epoch: leader?.epoch ?? agent.ownAssignment?.epoch ?? 0,
    version: offer.version,
    lease_ms: offer.leaseMs,
    leader: leader?.id ?? null,
  };
}

function presentStream(s: Stream) {
  return { id: presentId(s.id), url: s.url, name: s.name, metadata: s.metadata };
}
