/**
 * fingerctl's stream-health views: `streams --failing`, `stream ID` and `retry ID`.
 *
 * Answers are checked (in cli.ts) against the server's own shapes: streamsStatusBody
 * (health counts, failing and quarantined streams), instancesBody (degraded, labels),
 * streamDetailBody and retryBody (shared/status-health.ts). The formatters here are pure:
 * they print what the agent sent, and judge nothing themselves (health, failover and
 * quarantine are the leader's).
 */
import type { z } from "zod";
import { redactText } from "../shared/logger.js";
import type { InstancesBody, StreamsStatusBody } from "../shared/status.js";
import type { retryBody, StreamDetailBody } from "../shared/status-health.js";
import { table, time } from "./cli-format.js";

const pairs = (c: Record<string, string> | null) => (c && Object.keys(c).length ? Object.entries(c).map(([k, v]) => `${k}=${v}`).join(",") : "-");
type InstanceHealth = InstancesBody["instances"][number];

/** The WORKER column of `instances`: its liveness, and "DEGRADED" with the reason when it is. */
export function workerCell(i: InstanceHealth, ago: (ms: number | null) => string): string {
  const live = i.worker ? (i.worker.kind === "none" ? "none" : i.worker.ok ? "ok" : `silent ${ago(i.worker.last_seen_ms_ago)}`) : "-";
  if (!i.degraded) return live;
  const why = i.degraded_reason === "rate-limited" ? `rate-limited${i.degraded_until ? ` until ${time(i.degraded_until)}` : ""}` : (i.degraded_reason ?? "yes");
  return `${live}, DEGRADED (${why})`;
}

export const labelsCell = (i: InstanceHealth) => pairs(i.labels);

/** Errors are free text from workers: one line, bounded, so a table stays a table. */
export function oneLine(text: string | null, max = 80): string {
  if (text === null || text.trim() === "") return "-";
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function formatFailing(b: StreamsStatusBody): string {
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

export function formatRetry(r: z.infer<typeof retryBody>): string {
  return `Stream ${r.id}: quarantine and failure memory cleared; health is now ${r.health}. ${r.message}\n`;
}
