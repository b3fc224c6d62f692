/**
 * fingerctl's stream-health views: `streams --failing`, `stream ID` and `retry ID`.
 *
 * The zod shapes here are the stream-health part of the operator API (GET /streams/:id,
 * POST /streams/:id/retry, and what GET /streams/status adds: health counts, failing and
 * quarantined streams); an answer that does not match is refused as a version mismatch,
 * like every other fingerctl answer. The formatters are pure: they print what the agent
 * sent, and judge nothing themselves (health, failover and quarantine are the leader's).
 */
import { z } from "zod";
import { redactText } from "../shared/logger.js";
import { instanceSchema, instancesBody, streamsStatusBody } from "../shared/status.js";
import { STREAM_HEALTHS } from "../shared/types.js";
import { table, time } from "./cli-format.js";

const id = z.union([z.number(), z.string()]);
const health = z.enum(STREAM_HEALTHS);

/** GET /streams/status with its stream-health additions. */
export const streamsHealthBody = streamsStatusBody.extend({
  health: z.object({ ok: z.number(), failing: z.number(), quarantined: z.number(), unknown: z.number() }),
  failing_streams: z.array(z.object({ id, name: z.string(), owner: z.string().nullable(), error: z.string().nullable(), since: z.string().nullable() })),
  quarantined_streams: z.array(z.object({ id, name: z.string(), error: z.string().nullable(), since: z.string().nullable(), retry_at: z.string().nullable() })),
});
export type StreamsHealthBody = z.infer<typeof streamsHealthBody>;

const pairs = (c: Record<string, string> | null) => (c && Object.keys(c).length ? Object.entries(c).map(([k, v]) => `${k}=${v}`).join(",") : "-");

/** GET /instances with the workers' health: degraded (and why, until when) and labels. */
export const instancesHealthBody = instancesBody.extend({
  instances: z.array(
    instanceSchema.extend({
      degraded: z.boolean().optional(),
      degraded_reason: z.string().nullable().optional(),
      degraded_until: z.string().nullable().optional(),
      labels: z.record(z.string(), z.string()).optional(),
    }),
  ),
});
export type InstancesHealthBody = z.infer<typeof instancesHealthBody>;
type InstanceHealth = InstancesHealthBody["instances"][number];

/** The WORKER column: its liveness, and "degraded" with the reason when it is. */
export function workerCell(i: InstanceHealth, ago: (ms: number | null) => string): string {
  const live = i.worker ? (i.worker.kind === "none" ? "none" : i.worker.ok ? "ok" : `silent ${ago(i.worker.last_seen_ms_ago)}`) : "-";
  if (!i.degraded) return live;
  const why = i.degraded_reason === "rate-limited" ? `rate-limited${i.degraded_until ? ` until ${time(i.degraded_until)}` : ""}` : (i.degraded_reason ?? "yes");
  return `${live}, DEGRADED (${why})`;
}

export const labelsCell = (i: InstanceHealth) => pairs(i.labels ?? null);

/** GET /streams/:id. */
export const streamDetailBody = z.object({
  id,
  url: z.string(),
  name: z.string(),
  owner: z.string().nullable(),
  state: z.enum(["assigned", "revoking", "unassigned", "hashed", "legacy"]),
  health,
  last_ok_at: z.string().nullable(),
  last_error: z.string().nullable(),
  last_error_at: z.string().nullable(),
  failing_since: z.string().nullable(),
  failures: z.array(z.object({ instance_id: z.string(), error: z.string().nullable(), at: z.string() })),
  recent_moves: z.array(z.object({ at: z.string(), from: z.string().nullable(), to: z.string().nullable(), reason: z.string().nullable() })),
  quarantine: z.object({ since: z.string(), retry_at: z.string().nullable(), retries: z.number() }).nullable(),
  constraint: z.record(z.string(), z.string()).nullable(),
  unassigned_reason: z.string().nullable(),
});
export type StreamDetailBody = z.infer<typeof streamDetailBody>;

/** POST /streams/:id/retry. */
export const retryBody = z.object({ ok: z.literal(true), id, health });
export type RetryBody = z.infer<typeof retryBody>;

/** Errors are free text from workers: one line, bounded, so a table stays a table. */
export function oneLine(text: string | null, max = 80): string {
  if (text === null || text.trim() === "") return "-";
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function formatFailing(b: StreamsHealthBody): string {
  const h = b.health;
  let out = `Stream health: ${h.ok} ok, ${h.failing} failing, ${h.quarantined} quarantined, ${h.unknown} unknown (${b.streams.active} active)\n`;
  out += `\nFailing (${b.failing_streams.length}):\n`;
  out += b.failing_streams.length
    ? table(["STREAM", "NAME", "OWNER", "FAILING SINCE", "LAST ERROR"], b.failing_streams.map((s) => [String(s.id), oneLine(s.name, 30), s.owner ?? "(none)", time(s.since), oneLine(s.error)]))
    : "  none\n";
  out += `\nQuarantined (${b.quarantined_streams.length}):\n`;
  out += b.quarantined_streams.length
    ? table(["STREAM", "NAME", "SINCE", "NEXT RETRY", "LAST ERROR"], b.quarantined_streams.map((s) => [String(s.id), oneLine(s.name, 30), time(s.since), time(s.retry_at), oneLine(s.error)]))
    : "  none\n";
  if (b.quarantined_streams.length) out += "\nA quarantined stream is served by nobody until its next retry; `fingerctl retry ID` releases it now.\n";
  return out;
}

export function formatStream(s: StreamDetailBody): string {
  const where = s.owner ? `${s.owner} (${s.state})` : `nobody (${s.state}${s.unassigned_reason ? `: ${s.unassigned_reason}` : ""})`;
  const healthLine =
    s.health === "failing"
      ? `failing since ${time(s.failing_since)}`
      : s.health === "quarantined" && s.quarantine
        ? `quarantined since ${time(s.quarantine.since)}, next retry ${time(s.quarantine.retry_at)} (${s.quarantine.retries} retr${s.quarantine.retries === 1 ? "y" : "ies"} so far)`
        : s.health;
  const lines: [string, string][] = [
    ["owner", where],
    ["health", healthLine],
    ["last ok", time(s.last_ok_at)],
    ["last error", s.last_error === null ? "-" : `${oneLine(s.last_error, 200)} at ${time(s.last_error_at)}`],
    ["placement", s.constraint ? `only on workers labelled ${pairs(s.constraint)}` : "anywhere"],
  ];
  let out = `Stream ${s.id} ${JSON.stringify(s.name)} ${redactText(s.url)}\n` + lines.map(([k, v]) => `  ${k.padEnd(10)} ${v}`).join("\n") + "\n";
  out += "\nFailures (newest first):\n";
  out += s.failures.length ? table(["TIME", "WORKER", "ERROR"], s.failures.map((f) => [time(f.at), f.instance_id, oneLine(f.error)])) : "  none remembered\n";
  out += "\nRecent moves (newest first):\n";
  out += s.recent_moves.length ? table(["TIME", "FROM", "TO", "REASON"], s.recent_moves.map((m) => [time(m.at), m.from ?? "-", m.to ?? "(unassigned)", m.reason ?? "-"])) : "  none\n";
  if (s.health === "quarantined") out += `\nServed by nobody until the next retry; \`fingerctl retry ${s.id}\` releases it now.\n`;
  return out;
}

export function formatRetry(r: RetryBody): string {
  return `Stream ${r.id}: quarantine and failure memory cleared; health is now ${r.health}. The leader places it on its next tick.\n`;
}
