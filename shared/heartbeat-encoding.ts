/**
 * A heartbeat's wire text and whether a heartbeat says anything new: what the Redis
 * heartbeat (shared/redis-protocol.ts) and the PostgreSQL one (shared/pg-heartbeats.ts)
 * send, and when the Redis one stores the heartbeat whole.
 *
 * Guarantees: a heartbeat is encoded once however many channels send it; "nothing new"
 * compares as the JSON texts would (undefined-valued keys absent, key order free),
 * ignoring only what changes at every beat. Does not: decode (shared/redis-documents.ts),
 * nor decide how often a heartbeat is stored whole anyway (shared/redis-protocol.ts).
 */
import type { Heartbeat } from "./types.js";

const encoded = new WeakMap<Heartbeat, string>();

/**
 * A heartbeat's JSON text, encoded once however many channels send it (Redis and
 * PostgreSQL get the same beat). A heartbeat is never changed once built.
 */
export function encodeHeartbeat(hb: Heartbeat): string {
  let text = encoded.get(hb);
  if (text === undefined) {
    text = JSON.stringify(hb);
    encoded.set(hb, text);
  }
  return text;
}

/**
 * Whether heartbeat `b` says nothing `a` did not: equal but for what changes at every
 * beat (seq, the worker's counters and last call). Compared as their JSON texts would be
 * (a key whose value is undefined is absent; the same key order is not required), without
 * writing them: a heartbeat's held list and stream states are its largest part, and
 * usually the very same arrays and objects as the previous beat's.
 */
export function saysNothingNew(a: Heartbeat, b: Heartbeat): boolean {
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (key === "seq") continue;
    const x = (a as unknown as Record<string, unknown>)[key];
    const y = (b as unknown as Record<string, unknown>)[key];
    if (key === "worker" && x && y) {
      const { lastSeenMsAgo: _l1, processed: _p1, errors: _e1, ...wa } = x as Heartbeat["worker"];
      const { lastSeenMsAgo: _l2, processed: _p2, errors: _e2, ...wb } = y as Heartbeat["worker"];
      if (!sameJson(wa, wb)) return false;
    } else if (!sameJson(x, y)) return false;
  }
  return true;
}

/** Whether two JSON-like values encode alike (undefined-valued keys count as absent). */
function sameJson(x: unknown, y: unknown): boolean {
  if (x === y) return true;
  if (typeof x !== "object" || typeof y !== "object" || x === null || y === null) return false;
  if (Array.isArray(x) !== Array.isArray(y)) return false;
  if (Array.isArray(x)) {
    const b = y as unknown[];
    if (x.length !== b.length) return false;
    for (let i = 0; i < x.length; i++) if (!sameJson(x[i], b[i])) return false;
    return true;
  }
  const a = x as Record<string, unknown>;
  const b = y as Record<string, unknown>;
  let n = 0;
  for (const k in a) {
    if (a[k] === undefined) continue;
    n++;
    if (!sameJson(a[k], b[k])) return false;
  }
  for (const k in b) if (b[k] !== undefined) n--;
  return n === 0;
}
