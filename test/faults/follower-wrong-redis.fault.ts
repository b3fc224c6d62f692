/**
 * A heartbeat confirmed by a Redis the deciders do not read. A follower's Redis link is
 * sent to another Redis (a second private redis-server: its first REDIS_URL now names a
 * different server, as after a VIP or DNS change seen by that agent alone), and at the
 * same moment its PostgreSQL link is blackholed. That Redis keeps confirming its
 * heartbeats, but nobody decides from it: the deciders see the follower silent on both
 * channels and give its streams to the others after HEARTBEAT_TIMEOUT. Its worker must
 * have stopped by then: a Redis confirmation renews the lease only from the Redis whose
 * incarnation the leader recorded in PostgreSQL (agent/heartbeat.ts). After 8 s its link
 * goes back to the cluster's Redis, then PostgreSQL heals.
 *
 * Checked from the workers' records: zero overlap, every gap within HEARTBEAT_TIMEOUT +
 * 2 s (+ slack), one worker per stream with /status in agreement within 15 s of the heal
 * and again 5 s after it (the follower back, its streams handed back without overlap).
 */
import { waitFor } from "../helpers/cluster.js";
import { PrivateRedis } from "../helpers/private-servers.js";
import { describeScenario, FOLLOWER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

describeScenario({
  name: "a follower cut from PostgreSQL while its heartbeats go to another Redis, 8 s",
  gapBoundMs: FOLLOWER_GAP_MS,
  holdMs: 5000,
  async servers() {
    const other = await PrivateRedis.start({ name: "fingerv7-other-redis" });
    return { other, stop: () => other.stop() };
  },
  async run(fc, s) {
    const victim = fc.rng.pick(fc.followers(await fc.leader()));
    await sleep(2000);
    const firstFault = fc.redirectRedis(victim, s!.other.url, "follower");
    await fc.fault(victim, "pg", "blackhole", "follower");
    const worker = fc.workers.get(victim)!;
    const stoppedAfter = await waitFor(() => worker.serving.size === 0, 8000, `worker ${victim} to stop`, 20).catch(() => undefined);
    fc.log.event(stoppedAfter === undefined ? `worker ${victim} still serves ${worker.serving.size} streams 8 s into the fault` : `worker ${victim} serves nothing, ${(stoppedAfter / 1000).toFixed(2)} s into the fault`);
    await sleep(firstFault + 8000 - fc.log.now());
    fc.redirectRedis(victim, fc.redisUrl);
    await sleep(1000);
    const lastHeal = await fc.heal(victim, "pg");
    return { firstFault, lastHeal };
  },
});
