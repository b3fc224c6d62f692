/**
 * Failover benchmark: the tight figures the cluster tests only bound loosely.
 *
 * Real agent processes with the DEFAULT timings (HEARTBEAT_INTERVAL 1 s,
 * HEARTBEAT_TIMEOUT 5 s, WORKER_LEASE 3 s, LEADER_LEASE_TTL 5 s), private PostgreSQL and
 * Redis servers, one simulated worker per agent (it obeys the lease) and an observer
 * sampling every worker every 20 ms. For each failure: the longest time any stream went
 * unserved, and the number of samples where two workers served one stream (must be 0).
 */
import { Cluster, waitFor } from "../test/helpers/cluster.js";
import { privateServers } from "../test/helpers/private-servers.js";

export interface FailoverResult {
  readonly scenario: string;
  /** Longest time any stream went unserved, seconds. */
  readonly longestUnservedS: number;
  /** Streams that had to find a new worker. */
  readonly affected: number;
  readonly overlapSamples: number;
  readonly note: string;
}

const DEFAULTS = {
  HEARTBEAT_INTERVAL: "1",
  HEARTBEAT_TIMEOUT: "5",
  WORKER_LEASE: "3",
  LEADER_LEASE_TTL: "5",
  FALLBACK_GRACE: "10",
  HASH_SETTLE: "2",
  CATALOG_REFRESH: "5",
  DRAIN_TIMEOUT: "15",
};

export async function runFailover(opts: { streams?: number; log?: (line: string) => void } = {}): Promise<FailoverResult[]> {
  const STREAMS = opts.streams ?? 90;
  const log = opts.log ?? (() => {});
  const ids = ["f1", "f2", "f3"];
  const catalog = Array.from({ length: STREAMS }, (_, i) => String(i + 1));
  const { pg, redis, stop } = await privateServers(STREAMS);
  const token = "change-me-bench-token";
  const cluster = new Cluster({ databaseUrl: pg.url, redisUrl: redis.url, prefix: "bench", env: { ...DEFAULTS, ADMIN_TOKEN: token, LOG_LEVEL: "warn" } });
  const results: FailoverResult[] = [];
  try {
    await Promise.all(ids.map((id) => cluster.start(id, { capacity: 60 })));
    cluster.observer.start(catalog);
    const stable = () => cluster.stable("a stable assignment", 3000, 120_000);
    const leader = async () => {
      let l: string | null = null;
      await waitFor(async () => (l = await cluster.leader()) !== null, 60_000, "a leader");
      return l!;
    };
    const measure = async (scenario: string, note: string, act: () => Promise<number>, done: () => boolean) => {
      await stable();
      const overlapsBefore = cluster.observer.overlaps.length;
      cluster.observer.resetGaps();
      const affected = await act();
      await waitFor(done, 120_000, scenario, 20);
      await stable();
      const r = { scenario, longestUnservedS: cluster.observer.maxGapMs() / 1000, affected, overlapSamples: cluster.observer.overlaps.length - overlapsBefore, note };
      log(`${scenario}: longest unserved ${r.longestUnservedS.toFixed(2)} s, ${affected} streams, ${r.overlapSamples} overlap samples`);
      results.push(r);
    };
    const allServedWithout = (id: string) => () => cluster.get(id).worker!.serving.size === 0 && cluster.observer.unserved().length === 0;

    const victim = (await leader()) === ids[0] ? ids[1]! : ids[0]!;
    await measure("kill -9 of a follower", "HEARTBEAT_TIMEOUT 5 s", async () => {
      const n = cluster.get(victim).worker!.serving.size;
      await cluster.kill9(victim);
      return n;
    }, allServedWithout(victim));
    await cluster.restart(victim);

    const l = await leader();
    await measure("kill -9 of the leader", "its lease (5 s TTL) and HEARTBEAT_TIMEOUT overlap", async () => {
      const n = cluster.get(l).worker!.serving.size;
      await cluster.kill9(l);
      return n;
    }, allServedWithout(l));
    await cluster.restart(l);

    const frozen = (await leader()) === ids[2] ? ids[0]! : ids[2]!;
    await measure("SIGSTOP of a follower for 8 s", "its worker stops at the lease; others start after HEARTBEAT_TIMEOUT", async () => {
      const n = cluster.get(frozen).worker!.serving.size;
      cluster.signal(frozen, "SIGSTOP");
      setTimeout(() => cluster.signal(frozen, "SIGCONT"), 8000);
      return n;
    }, allServedWithout(frozen));
    await waitFor(() => cluster.get(frozen).worker!.serving.size > 0, 120_000, "the resumed agent to serve again");

    const drained = (await leader()) === ids[1] ? ids[2]! : ids[1]!;
    await measure("SIGTERM (drain, break-before-make handoff)", "no timeout involved: the worker confirms, the leader moves", async () => {
      const a = cluster.get(drained);
      const n = a.worker!.serving.size;
      a.proc.kill("SIGTERM");
      await a.exited;
      return n;
    }, allServedWithout(drained));
    await cluster.restart(drained);
    // The flip is measured on a settled fleet: the restarted member has its share back
    // first, or its rejoin would be counted as moves of the flip.
    const share = Math.floor(STREAMS / ids.length);
    await waitFor(() => cluster.get(drained).worker!.serving.size >= share - 1, 120_000, "the restarted agent to hold its share again");

    // measure() waits for a stable assignment before acting: `before` is a settled picture.
    const flip = (mode: "hashed" | "orchestrated") => async () => {
      const before = new Map(cluster.observer.served());
      const res = await fetch(`${cluster.get(ids[0]!).url}/mode`, { method: "PUT", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ mode }) });
      if (!res.ok) throw new Error(`PUT /mode: HTTP ${res.status}`);
      await waitFor(async () => (await Promise.all(ids.map(async (id) => (await cluster.status(id)).mode))).every((m) => m === mode), 60_000, mode);
      await stable();
      const after = cluster.observer.served();
      return [...before].filter(([s, w]) => after.get(s) !== w).length;
    };
    await measure("flag → hashed (PUT /mode)", "moved = streams whose worker changed, on a settled fleet", flip("hashed"), () => cluster.observer.unserved().length === 0);

    await measure("Redis restart (data lost), ON_COORDINATION_LOSS=keep", "6 s outage", async () => {
      await redis.down();
      await new Promise((r) => setTimeout(r, 6000));
      await redis.up();
      return 0;
    }, () => cluster.observer.unserved().length === 0);

    await measure("flag → orchestrated (PUT /mode)", "moved = streams whose worker changed", flip("orchestrated"), () => cluster.observer.unserved().length === 0);
  } finally {
    await cluster.close();
    await stop();
  }
  return results;
}
