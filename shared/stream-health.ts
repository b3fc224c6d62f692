/**
 * What a stream's health record means, decided in ONE place for every view (the
 * leader's metrics and samples, /streams/status, GET /streams/:id, the dashboard). PURE.
 *
 * - quarantined: the leader took it off every worker (it failed on
 *   STREAM_QUARANTINE_AFTER workers in a row, or on every worker it may go to);
 * - failing: its CURRENT owner reports failures (an episode left on a former owner says
 *   nothing about the stream where it is now);
 * - ok: it was heard at least once and is not failing where it is;
 * - unknown: no outcome yet.
 * Does not: decide what to do about it (shared/placement/health-rules.ts).
 */
import type { HealthState } from "./stream-health-store.js";
import { STREAM_HEALTHS, type StreamHealth, type StreamId } from "./types.js";

export function healthOf(record: HealthState | undefined, owner: string | null | undefined): StreamHealth {
  if (!record) return "unknown";
  if (record.quarantinedAt !== null) return "quarantined";
  if (record.failingOn !== null && record.failingOn === owner) return "failing";
  return record.lastOkAt !== null ? "ok" : "unknown";
}

export type HealthCounts = Record<StreamHealth, number>;

/** Every health, counted 0. */
export function noHealth(): HealthCounts {
  return Object.fromEntries(STREAM_HEALTHS.map((h) => [h, 0])) as HealthCounts;
}

/** Health counts over `streams` (each with its current owner, or null). */
export function countHealth(streams: Iterable<{ readonly id: StreamId; readonly owner: string | null }>, records: ReadonlyMap<StreamId, HealthState>): HealthCounts {
  const counts = noHealth();
  for (const s of streams) counts[healthOf(records.get(s.id), s.owner)]++;
  return counts;
}
