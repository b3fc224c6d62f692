/**
 * The orchestrator API that today's fingerv7 build already speaks, served by the sidecar
 * so that `ORCHESTRATOR_URL=http://localhost:8001` works without changing the worker:
 *
 *   POST /api/workers/register  {instance_id, worker_type?, capacity?, ip?, port?, status?, metadata?}
 *                               → {success: true, worker_id, message}
 *   POST /api/heartbeat         {worker_instance_id, status?, current_load?, available_capacity?, timestamp?, metrics?}
 *                               → {success: true, message}
 *   GET  /api/streams/assign?worker_id=&capacity=&worker_type=
 *                               → {status: "assigned", assigned_streams, streams, total, worker_id}
 *                                 | {status: "no_streams", assigned_streams: [], streams: [], total: 0, message, worker_id}
 *   POST /streams/release       {server_id, stream_ids} → {status: "released", released_streams, ignored}
 *   POST /api/streams/update    {stream_id, worker_instance_id, status, result?} → {success: true, message}
 *   GET  /api/workers           → {workers: [{instance_id, worker_type, status, capacity, current_load,
 *                                  available_capacity, last_heartbeat, registered_at}], total}
 *
 * Safety rules (these workers know nothing of `lease_ms`; see docs/legacy-workers.md):
 * 1. A worker of this kind processes exactly the set its last assign call returned. So an
 *    assign call supersedes every earlier answer (Serving.fetchLegacy), and an answer
 *    counts as held until the worker's next call or WORKER_TIMEOUT of silence. A handoff
 *    therefore waits for the worker's next assign call: break-before-make holds as long as
 *    the worker polls more often than WORKER_TIMEOUT.
 * 2. One sidecar, one worker (agent/worker-link.ts holds the binding): a call naming
 *    another worker id while the bound one is alive is refused with 409, since two
 *    workers polling one sidecar would both be handed the same streams.
 * 3. The capacity a worker declares (register, or the first call after a sidecar restart)
 *    replaces MAX_STREAMS while that worker is alive (agent/worker-link.ts).
 *
 * Bad input is a 400 with a message (with `success: false` and `detail` as well, the
 * shape these workers' client already reads), never a 500.
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { compareIds, presentId } from "../../shared/catalog.js";
import type { Stream } from "../../shared/types.js";
import type { Agent } from "../agent.js";
import type { BoundWorker } from "../worker-link.js";
import { describeIssues, jsonError, readJson } from "./errors.js";
import { validQuery } from "./validate.js";

const BODY_LIMIT = 1024 * 1024;

// ---- bodies -------------------------------------------------------------------------

const workerId = z.union([z.string().trim().min(1, "must not be empty").max(256), z.number().int().min(0)]).transform(String);
const streamId = z.union([z.string().trim().min(1, "must not be empty").max(256), z.number().int()]).transform(String);
const count = z.number().int().min(0).max(1_000_000);
const percent = z.number().min(0).max(100_000);
const json = z.record(z.string(), z.unknown());

const registerBody = z.object({
  instance_id: workerId.optional(),
  worker_type: z.string().min(1).max(64).optional(),
  capacity: z.number().int().min(0).max(100_000).optional(),
  ip: z.string().max(256).nullable().optional(),
  port: z.number().int().min(0).max(65_535).nullable().optional(),
  status: z.string().min(1).max(64).optional(),
  metadata: z
    .looseObject({
      version: z.string().max(128).nullable().optional(),
      capabilities: z.array(z.string().max(128)).max(100).nullable().optional(),
      region: z.string().max(128).nullable().optional(),
    })
    .nullable()
    .optional(),
});

const heartbeatBody = z.object({
  worker_instance_id: workerId.optional(),
  status: z.string().min(1).max(64).optional(),
  current_load: count.optional(),
  available_capacity: count.optional(),
  timestamp: z.union([z.string().max(64), z.number()]).nullable().optional(),
  metrics: z
    .looseObject({
      system: z.looseObject({ cpu_percent: percent.nullable().optional(), memory_percent: percent.nullable().optional() }).nullable().optional(),
      worker: json.nullable().optional(),
    })
    .nullable()
    .optional(),
});

const digits = (what: string) => z.string().regex(/^\d{1,9}$/, `${what} must be a whole number`).transform(Number);
const assignQuery = z.object({
  worker_id: z.string().trim().min(1, "worker_id must not be empty").max(256).optional(),
  capacity: digits("capacity").pipe(z.number().max(100_000)).optional(),
  worker_type: z.string().max(64).optional(),
});

const releaseBody = z.object({
  server_id: workerId.optional(),
  stream_ids: z.array(streamId).max(100_000).optional(),
});

export const UPDATE_STATUSES = ["processing", "completed", "failed", "cancelled"] as const;
const updateBody = z.object({
  stream_id: streamId.optional(),
  worker_instance_id: workerId.optional(),
  status: z.enum(UPDATE_STATUSES, { error: `status must be one of ${UPDATE_STATUSES.join(", ")}` }).optional(),
  result: z.unknown().optional(),
});

// ---- answers ------------------------------------------------------------------------

function bad(c: Context, message: string) {
  return jsonError(c, 400, message, { success: false, detail: message });
}

function conflict(c: Context, agent: Agent, id: string, holder: BoundWorker, silentMs: number) {
  const waitS = Math.max(0, Math.ceil((agent.worker.workerTimeoutMs - silentMs) / 1000));
  const message =
    `This sidecar (${agent.id}) serves worker ${holder.id}, heard from ${(silentMs / 1000).toFixed(1)} s ago; ` +
    `it refuses worker ${id} so that two workers are never handed the same streams. ` +
    `Run one worker per sidecar with a stable instance id; a new id is accepted after ${agent.worker.workerTimeoutMs / 1000} s of silence from the current one (about ${waitS} s from now).`;
  return jsonError(c, 409, message, { success: false, detail: message, worker_id: holder.id });
}

function parseFailure(c: Context, what: string, issues: readonly { path: readonly PropertyKey[]; message: string }[]) {
  return bad(c, `Bad ${what}: ${describeIssues(issues)}`);
}

function streamObject(s: Stream) {
  return { stream_id: s.id, id: presentId(s.id), url: s.url, stream_url: s.url, name: s.name, metadata: s.metadata };
}

function workerView(agent: Agent, w: BoundWorker, alive: boolean) {
  const capacity = w.capacity ?? agent.worker.maxStreams;
  const load = w.currentLoad ?? w.lastAssigned;
  return {
    instance_id: w.id,
    worker_type: w.workerType,
    status: alive ? w.status : "inactive",
    capacity,
    current_load: load,
    available_capacity: w.availableCapacity ?? Math.max(0, capacity - load),
    last_heartbeat: w.lastSeenWall,
    registered_at: w.registeredAt,
  };
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : undefined;
}

function firstNumber(o: Record<string, unknown> | null | undefined, keys: readonly string[]): number | undefined {
  if (!o) return undefined;
  for (const k of keys) {
    const v = num(o[k]);
    if (v !== undefined) return Math.floor(v);
  }
  return undefined;
}

function errorOf(result: unknown): string | undefined {
  if (result === undefined || result === null) return undefined;
  if (typeof result === "string") return result.slice(0, 2000);
  if (typeof result === "object") {
    const r = result as Record<string, unknown>;
    for (const k of ["error", "message", "reason"]) if (typeof r[k] === "string") return (r[k] as string).slice(0, 2000);
  }
  return JSON.stringify(result).slice(0, 2000);
}

// ---- routes -------------------------------------------------------------------------

export function legacyRoutes(agent: Agent): Hono {
  const app = new Hono();
  const link = agent.worker;
  const m = agent.metrics;
  const limit = bodyLimit({ maxSize: BODY_LIMIT, onError: (c) => jsonError(c, 413, `Body too large (over ${BODY_LIMIT} bytes).`, { success: false }) });

  async function body<T>(c: Context, schema: z.ZodType<T>, what: string, shape: string): Promise<{ ok: true; value: T } | { ok: false; res: Response }> {
    const raw = await readJson(c);
    if (raw === undefined || raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      return { ok: false, res: bad(c, `Body must be a JSON object: ${shape}`) };
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) return { ok: false, res: parseFailure(c, what, parsed.error.issues) };
    return { ok: true, value: parsed.data };
  }

  app.post("/api/workers/register", limit, async (c) => {
    const b = await body(c, registerBody, "registration", "{instance_id, worker_type, capacity, ip?, port?, status, metadata?}");
    if (!b.ok) return b.res;
    const r = b.value;
    if (r.instance_id === undefined) return bad(c, "instance_id is required");
    const cl = link.claim(r.instance_id);
    if (!cl.ok) return conflict(c, agent, r.instance_id, cl.holder, cl.silentMs);
    const w = cl.worker;
    w.workerType = r.worker_type ?? w.workerType;
    w.status = r.status ?? "active";
    w.ip = r.ip ?? w.ip;
    w.port = r.port ?? w.port;
    w.metadata = r.metadata ?? w.metadata;
    link.declareCapacity(w, r.capacity);
    link.report({}, "legacy");
    agent.logger.info({ category: "INSTANCE", worker: w.id, capacity: agent.capacity, version: w.metadata.version }, "worker registered (older worker API)");
    return c.json({
      success: true,
      worker_id: w.id,
      message: `Worker ${w.id} registered with sidecar ${agent.id}; capacity ${agent.capacity}. Poll GET /api/streams/assign and process exactly the streams it returns.`,
    });
  });

  app.post("/api/heartbeat", limit, async (c) => {
    const b = await body(c, heartbeatBody, "heartbeat", "{worker_instance_id, status, current_load, available_capacity, timestamp?, metrics?}");
    if (!b.ok) return b.res;
    const h = b.value;
    if (h.worker_instance_id === undefined) return bad(c, "worker_instance_id is required");
    const cl = link.claim(h.worker_instance_id);
    if (!cl.ok) return conflict(c, agent, h.worker_instance_id, cl.holder, cl.silentMs);
    const w = cl.worker;
    if (cl.created && h.current_load !== undefined && h.available_capacity !== undefined) {
      // An unknown worker (the sidecar restarted, or it never registered): its capacity is what it says it has.
      link.declareCapacity(w, h.current_load + h.available_capacity);
    }
    if (h.status !== undefined) w.status = h.status;
    if (h.current_load !== undefined) w.currentLoad = h.current_load;
    if (h.available_capacity !== undefined) w.availableCapacity = h.available_capacity;
    const sys = h.metrics?.system;
    const cpu = num(sys?.cpu_percent);
    const mem = num(sys?.memory_percent);
    if (cpu !== undefined) m.workerCpu.set(cpu);
    if (mem !== undefined) m.workerMemory.set(mem);
    if (h.current_load !== undefined) m.workerLoad.set(h.current_load);
    const wm = h.metrics?.worker ?? undefined;
    link.report(
      {
        processed: firstNumber(wm, ["processed_count", "total_processed", "processed", "songs_processed"]),
        errors: firstNumber(wm, ["error_count", "total_errors", "errors"]),
      },
      "legacy",
    );
    return c.json({ success: true, message: cl.created ? `Heartbeat received; worker ${w.id} registered with sidecar ${agent.id}.` : "Heartbeat received" });
  });

  app.get("/api/streams/assign", validQuery(assignQuery, bad), async (c) => {
    const { worker_id: id, capacity, worker_type } = c.req.valid("query");
    if (id === undefined) return bad(c, "worker_id is required (GET /api/streams/assign?worker_id=<id>&capacity=<n>&worker_type=fingerv7)");
    const cl = link.claim(id);
    if (!cl.ok) return conflict(c, agent, id, cl.holder, cl.silentMs);
    const w = cl.worker;
    if (cl.created) {
      // The sidecar restarted under a running worker: take its word for its capacity.
      link.declareCapacity(w, capacity);
      if (worker_type) w.workerType = worker_type;
    }
    const offer = await link.assignment({ api: "legacy" });
    const streams = [...offer.streams].sort((a, b) => compareIds(a.id, b.id));
    if (streams.length === 0) {
      return c.json({
        status: "no_streams",
        assigned_streams: [],
        streams: [],
        total: 0,
        message:
          offer.leaseMs === 0
            ? `Sidecar ${agent.id} is not coordinated right now (no confirmed heartbeat); process nothing and ask again.`
            : `No streams are assigned to worker ${w.id} right now.`,
        worker_id: w.id,
      });
    }
    return c.json({
      status: "assigned",
      assigned_streams: streams.map((s) => presentId(s.id)),
      streams: streams.map(streamObject),
      total: streams.length,
      worker_id: w.id,
    });
  });

  app.post("/streams/release", limit, async (c) => {
    const b = await body(c, releaseBody, "release", "{server_id, stream_ids: [...]}");
    if (!b.ok) return b.res;
    const { server_id: id, stream_ids: ids } = b.value;
    if (id === undefined) return bad(c, "server_id is required");
    if (ids === undefined) return bad(c, "stream_ids is required (a list of stream ids)");
    const cl = link.claim(id);
    if (!cl.ok) return conflict(c, agent, id, cl.holder, cl.silentMs);
    link.report({}, "legacy");
    const released = new Set(agent.releaseStreams([...new Set(ids)]));
    if (released.size > 0) agent.logger.info({ category: "STREAM", worker: cl.worker.id, released: [...released] }, "the worker released streams");
    return c.json({
      status: "released",
      released_streams: [...released].map(presentId),
      ignored: [...new Set(ids)].filter((s) => !released.has(s)).map(presentId),
    });
  });

  app.post("/api/streams/update", limit, async (c) => {
    const b = await body(c, updateBody, "update", "{stream_id, worker_instance_id, status, result?}");
    if (!b.ok) return b.res;
    const u = b.value;
    if (u.stream_id === undefined) return bad(c, "stream_id is required");
    if (u.worker_instance_id === undefined) return bad(c, "worker_instance_id is required");
    if (u.status === undefined) return bad(c, `status is required (one of ${UPDATE_STATUSES.join(", ")})`);
    const cl = link.claim(u.worker_instance_id);
    if (!cl.ok) return conflict(c, agent, u.worker_instance_id, cl.holder, cl.silentMs);
    // `cancelled` means the worker gave the stream up: move it now, as POST /streams/release does.
    if (u.status === "cancelled") agent.releaseStreams([u.stream_id]);
    link.report({ streams: [{ id: u.stream_id, status: u.status, error: u.status === "failed" ? errorOf(u.result) : undefined }] }, "legacy");
    m.workerStreamUpdates.inc({ status: u.status });
    return c.json({ success: true, message: `Stream ${u.stream_id} status updated to ${u.status}` });
  });

  app.get("/api/workers", (c) => {
    const workers = link.boundWorkers().map(({ worker, alive }) => workerView(agent, worker, alive));
    return c.json({ workers, total: workers.length });
  });

  return app;
}
