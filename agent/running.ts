/**
 * What runs once an agent has joined: the cluster channel's subscriber and the four
 * periodic loops (heartbeat, tracker, own rows, catalog), with the steps of the last
 * three. agent/agent.ts starts them; agent/loops.ts runs each loop.
 *
 * Guarantees: every step that may change what is offered asks the offering again
 * (agent/offering.ts); an agent hashing without a catalog copy gets one read at once;
 * an agent found unregistered by the own-rows read registers again; the catalog copy is
 * read no sooner than agent/startup.ts's catalogCopyWaitMs allows. Does not: start the
 * elector or the HTTP server, nor stop anything (the loops end when `signal` aborts; the
 * caller closes the subscriber).
 */
import type { Redis } from "ioredis";
import type { CatalogCache } from "../shared/catalog-cache.js";
import type { Clock, Waker } from "../shared/clock.js";
import type { Config } from "../shared/config.js";
import type { LegacyView } from "../shared/legacy.js";
import type { Logger } from "../shared/logger.js";
import type { MembershipTracker } from "../shared/membership.js";
import { redisTargets } from "../shared/redis.js";
import type { Store } from "../shared/store.js";
import type { LeaderLoop } from "../leader/leader.js";
import type { Beliefs } from "./beliefs.js";
import type { HeartbeatLoop } from "./heartbeat.js";
import { repeat } from "./loops.js";
import { subscribeNudges } from "./nudges.js";
import type { Offering } from "./offering.js";
import { catalogCopyWaitMs, register } from "./startup.js";

export interface RunningDeps {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Aborted when the agent closes. */
  readonly signal: AbortSignal;
  /** The cluster channel's name (shared/keys.ts). */
  readonly channel: string;
  readonly heartbeat: HeartbeatLoop;
  readonly tracker: MembershipTracker;
  readonly offering: Offering;
  readonly beliefs: Beliefs;
  readonly store: Store;
  readonly catalog: CatalogCache;
  readonly legacy: LegacyView;
  readonly leader: LeaderLoop;
  readonly isLeader: () => boolean;
  readonly capacity: () => number;
  readonly wakeHeartbeat: Waker;
  readonly wakeOwn: Waker;
  readonly wakeCatalog: Waker;
  /** When start() began (the clock's time): the catalog copy's first read counts from it. */
  readonly startedAt: number;
}

/** Subscribes to the cluster channel and starts the loops; they run until `signal` aborts. */
export function startRunning(d: RunningDeps): { sub: Redis; loops: Promise<void>[] } {
  const { config, clock, tracker, offering, beliefs, catalog } = d;
  const id = config.instanceId;
  const mode = () => offering.state.mode;
  const sub = subscribeNudges(redisTargets(config)[0]!, d.channel, {
    id,
    ownVersion: () => beliefs.own?.version ?? 0,
    leading: d.isLeader,
    reloadOwn: () => d.wakeOwn.wake(),
    refreshView: () =>
      void tracker.refresh().then(
        () => offering.afterChange(),
        () => {},
      ),
    leader: d.leader,
  });

  const track = async (): Promise<void> => {
    // A leader's tick reads at every tick: the loop's own read would repeat it.
    await tracker.refreshWithin(config.heartbeatIntervalMs / 2);
    offering.afterChange();
    // Hashing now without a catalog copy yet (agent/startup.ts catalogCopyWaitMs): read it now.
    if (mode() === "hashed" && !catalog.current) d.wakeCatalog.wake();
  };

  const loadOwn = async (): Promise<void> => {
    const started = clock.now();
    const own = await d.store.ownAssignment(id);
    if (!own.registered) await register(d.store, config, d.capacity());
    beliefs.observeOwn(own, started);
    offering.afterChange();
  };

  const refreshCatalog = async (): Promise<void> => {
    const t = config.timings;
    // Hashing needs the catalog (and the legacy members); orchestrated agents keep a copy
    // for a fallback, read from half a FALLBACK_GRACE after the start (agent/startup.ts).
    const wait = catalogCopyWaitMs({ useOrchestrator: config.useOrchestrator, mode: mode(), sinceStartMs: clock.now() - d.startedAt, fallbackGraceMs: config.fallbackGraceMs });
    if (wait > 0) {
      clock.sleep(wait, d.signal).then(() => d.wakeCatalog.wake(), () => {});
      return;
    }
    await catalog.get(mode() === "hashed" ? t.catalogMaxAgeHashedMs : t.catalogMaxAgeOrchestratedMs);
    await d.legacy.members();
    if (mode() === "hashed") offering.afterChange();
  };

  const t = config.timings;
  const ctx = { clock, logger: d.logger, signal: d.signal };
  const loops = [
    repeat(ctx, "heartbeat", config.heartbeatIntervalMs, () => d.heartbeat.beat(), d.wakeHeartbeat),
    repeat(ctx, "tracker", config.heartbeatIntervalMs, track),
    repeat(ctx, "own", t.ownRowsReloadMs, loadOwn, d.wakeOwn),
    repeat(ctx, "catalog", config.catalogRefreshMs, refreshCatalog, d.wakeCatalog),
  ];
  return { sub, loops };
}
