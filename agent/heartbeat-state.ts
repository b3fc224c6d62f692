/**
 * What an agent's heartbeat says about it (the part agent/liveness.ts does not add: its
 * session, capacity, mode, rows version, held and released streams, the worker's health,
 * labels, degraded streams, the hashed view's basis), read from the agent's parts at the
 * moment of the beat.
 *
 * Guarantees: one home for which part answers each field; labels are sent only when some
 * are set; every call reads afresh (nothing is cached here). Does not: send anything
 * (agent/heartbeat.ts), nor decide any of what it reports.
 */
import type { Config } from "../shared/config.js";
import type { OwnAssignment } from "../shared/store.js";
import type { HeartbeatState } from "./liveness.js";
import type { Offering } from "./offering.js";
import type { StreamOutcomes } from "./stream-outcomes.js";
import type { WorkerLink } from "./worker-link.js";

export interface HeartbeatSources {
  /** The session with the resync generation (agent/offer.ts sessionOf). */
  readonly session: string;
  readonly capacity: number;
  readonly own: OwnAssignment | undefined;
  readonly leaving: boolean;
  readonly restarting: boolean;
  readonly labels: Config["labels"];
  readonly worker: WorkerLink;
  readonly outcomes: StreamOutcomes;
  readonly offering: Offering;
}

export function heartbeatState(now: number, s: HeartbeatSources): HeartbeatState {
  return {
    session: s.session,
    capacity: s.capacity,
    draining: s.own?.draining ?? false,
    mode: s.offering.state.mode,
    version: s.own?.version ?? 0,
    held: s.worker.serving.held(now),
    leaving: s.leaving,
    restarting: s.restarting,
    released: [...s.worker.released],
    states: s.worker.streamStates(),
    worker: s.worker.health(now),
    labels: Object.keys(s.labels).length > 0 ? s.labels : undefined,
    degraded: s.outcomes.degraded(now),
    hashBasis: s.offering.state.hashedView?.basis,
  };
}
