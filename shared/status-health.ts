/**
 * Stream health in the operator's views: the response shapes (zod, so the server's tests
 * and fingerctl validate exactly what travels) and the PURE joins behind
 * GET /streams/status's health fields, GET /streams/:id and GET /health/streams.
 *
 * Guarantees: every health shown comes from shared/stream-health.ts's `healthOf`, with
 * the stream's current owner (the member holding it, else its row's owner); an
 * unassigned stream's reason is "quarantined", "no-matching-worker" (no live member
 * carries its labels) or "capacity", decided here only. Does not: read anything.
 */
import { z } from "zod";
import { presentId } from "./catalog.js";
import { satisfies, type Labels } from "./labels.js";
import { healthOf, countHealth } from "./stream-health.js";
import type { ChargedFailure, HealthRecord, HealthSample } from "./stream-health-store.js";
import { STREAM_HEALTHS, type Stream, type StreamId } from "./types.js";

const id = z.union([z.number(), z.string()]);

export const healthCountsSchema = z.object({ ok: z.number(), failing: z.number(), quarantined: z.number(), unknown: z.number() });
export const failingStreamSchema = z.object({ id, name: z.string(), owner: z.string().nullable(), error: z.string().nullable(), since: z.string().nullable() });
export const quarantinedStreamSchema = z.object({ id, name: z.string(), error: z.string().nullable(), since: z.string().nullable(), retry_at: z.string().nullable() });

export interface HealthSummary {
  readonly counts: z.infer<typeof healthCountsSchema>;
  readonly failing: z.infer<typeof failingStreamSchema>[];
  readonly quarantined: z.infer<typeof quarantinedStreamSchema>[];
  /** Active streams no worker has reported on yet (health "unknown"); every other active stream not failing or quarantined is ok. */
  readonly unknown: StreamId[];
}

/** Health counts and the failing and quarantined streams among the active ones. */
export function healthSummary(streams: readonly Stream[], ownerOf: (s: StreamId) => string | null, records: ReadonlyMap<StreamId, HealthRecord>): HealthSummary {
  const listed = streams.map((s) => ({ id: s.id, owner: ownerOf(s.id) }));
  const counts = countHealth(listed, records);
  const failing: HealthSummary["failing"] = [];
  const quarantined: HealthSummary["quarantined"] = [];
  const unknown: StreamId[] = [];
  for (const s of streams) {
    const r = records.get(s.id);
    const h = healthOf(r, ownerOf(s.id));
    if (h === "failing") failing.push({ id: presentId(s.id), name: s.name, owner: ownerOf(s.id), error: r!.lastError, since: r!.failingSince });
    else if (h === "quarantined") quarantined.push({ id: presentId(s.id), name: s.name, error: r!.lastError, since: r!.quarantinedAt, retry_at: r!.retryAt });
    else if (h === "unknown") unknown.push(s.id);
  }
  return { counts, failing, quarantined, unknown };
}

/** Why an active stream without an owner has none. */
export function unassignedReason(s: Stream, record: HealthRecord | undefined, liveLabels: readonly (Labels | undefined)[]): "quarantined" | "no-matching-worker" | "capacity" {
  if (record?.quarantinedAt) return "quarantined";
  if (s.constraint && Object.keys(s.constraint).length > 0 && !liveLabels.some((l) => satisfies(l, s.constraint))) return "no-matching-worker";
  return "capacity";
}

export const streamDetailBody = z.object({
  id,
  url: z.string(),
  name: z.string(),
  owner: z.string().nullable(),
  state: z.enum(["assigned", "revoking", "unassigned", "hashed", "legacy"]),
  health: z.enum(STREAM_HEALTHS),
  last_ok_at: z.string().nullable(),
  last_error: z.string().nullable(),
  last_error_at: z.string().nullable(),
  failing_since: z.string().nullable(),
  failures: z.array(z.object({ instance_id: z.string(), error: z.string().nullable(), at: z.string() })),
  recent_moves: z.array(z.object({ at: z.string(), from: z.string().nullable(), to: z.string().nullable(), reason: z.string().nullable() })),
  quarantine: z.object({ since: z.string().nullable(), retry_at: z.string().nullable(), retries: z.number() }).nullable(),
  constraint: z.record(z.string(), z.string()).nullable(),
  unassigned_reason: z.string().nullable(),
});
export type StreamDetailBody = z.infer<typeof streamDetailBody>;

export interface DetailInput {
  readonly stream: Stream;
  readonly owner: string | null;
  readonly state: StreamDetailBody["state"];
  readonly record: HealthRecord | undefined;
  readonly failures: readonly ChargedFailure[];
  readonly moves: StreamDetailBody["recent_moves"];
  readonly liveLabels: readonly (Labels | undefined)[];
}

export function streamDetail(i: DetailInput): StreamDetailBody {
  const r = i.record;
  return {
    id: presentId(i.stream.id),
    url: i.stream.url,
    name: i.stream.name,
    owner: i.owner,
    state: i.state,
    health: healthOf(r, i.owner),
    last_ok_at: r?.lastOkAt ?? null,
    last_error: r?.lastError ?? null,
    last_error_at: r?.lastErrorAt ?? null,
    failing_since: r?.failingOn !== null && r?.failingOn === i.owner ? r.failingSince : null,
    failures: i.failures.map((f) => ({ instance_id: f.instance, error: f.error, at: f.at })),
    recent_moves: i.moves,
    quarantine: r?.quarantinedAt ? { since: r.quarantinedAt, retry_at: r.retryAt, retries: r.retries } : null,
    constraint: i.stream.constraint ? { ...i.stream.constraint } : null,
    unassigned_reason: i.state === "unassigned" ? unassignedReason(i.stream, r, i.liveLabels) : null,
  };
}

export const healthSamplesBody = z.object({ minutes: z.number(), samples: z.array(z.object({ at: z.string(), streams: z.number(), served: z.number(), healthy: z.number() })) });
export function samplesBody(minutes: number, samples: readonly HealthSample[]): z.infer<typeof healthSamplesBody> {
  return { minutes, samples: [...samples] };
}

export const retryBody = z.object({ ok: z.literal(true), id, health: z.enum(STREAM_HEALTHS), message: z.string() });
