/**
 * The documents agents store in Redis for each other (a heartbeat, the leader info, the
 * leader mark, the flag mirror, a nudge), decoded. One agent's bad write, or an older
 * agent's, must not stop everyone else: a document that does not parse decodes to
 * `undefined`, as if absent. PURE.
 */
import type { ClusterFlag } from "./membership.js";
import type { Heartbeat, LeaderInfo, Nudge } from "./types.js";

export function decodeHeartbeat(raw: string): Heartbeat | undefined {
  return heartbeatFrom(json(raw));
}

/** A parsed value as a heartbeat (the checks decodeHeartbeat makes); undefined when it is none. */
export function heartbeatFrom(v: unknown): Heartbeat | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const h = v as Record<string, unknown>;
  if (typeof h.id !== "string" || typeof h.seq !== "number" || !Array.isArray(h.held)) return undefined;
  return v as Heartbeat;
}

export function decodeLeaderInfo(raw: string): LeaderInfo | undefined {
  const v = json(raw);
  if (!v || typeof v.id !== "string" || typeof v.epoch !== "number") return undefined;
  return v as unknown as LeaderInfo;
}

/** "<feed id> <leader id>", as the heartbeat script writes it; undefined when absent or unreadable. */
export function decodeLeaderMark(raw: string): { id: string; mark: string } | undefined {
  const at = raw.indexOf(" ");
  return at > 0 && at < raw.length - 1 ? { mark: raw.slice(0, at), id: raw.slice(at + 1) } : undefined;
}

export function decodeFlag(raw: string): ClusterFlag | undefined {
  const v = json(raw);
  if (!v || (v.mode !== "orchestrated" && v.mode !== "hashed") || typeof v.version !== "number") return undefined;
  return v as unknown as ClusterFlag;
}

/** A message from the nudge channel; undefined for anything this version does not know. */
export function decodeNudge(raw: string): Nudge | undefined {
  const v = json(raw);
  if (!v) return undefined;
  switch (v.t) {
    case "assign":
      return typeof v.epoch === "number" && !!v.versions && typeof v.versions === "object" ? (v as unknown as Nudge) : undefined;
    case "ack":
    case "drain":
      return typeof v.id === "string" ? (v as unknown as Nudge) : undefined;
    case "mode":
      return v.mode === "orchestrated" || v.mode === "hashed" ? (v as unknown as Nudge) : undefined;
    case "leader":
      return typeof v.epoch === "number" ? (v as unknown as Nudge) : undefined;
    case "rebalance":
      return v as unknown as Nudge;
    default:
      return undefined;
  }
}

function json(raw: string): Record<string, unknown> | undefined {
  const v = parseDocument(raw);
  return isRecord(v) ? v : undefined;
}

/** A stored JSON text as a value; undefined when it is absent or does not parse (see the header: counts as absent). */
export function parseDocument(raw: unknown): unknown {
  if (typeof raw !== "string" || raw === "") return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** A JSON object (not an array, not null). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
