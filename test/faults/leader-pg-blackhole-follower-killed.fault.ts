/**
 * The leader's PostgreSQL link is blackholed; 2 s later a follower is killed (kill -9);
 * the link heals 15 s after the kill. The killed follower's streams must be served again
 * within HEARTBEAT_TIMEOUT + 2 s + LEADER_LEASE_TTL (+ slack) of its worker stopping: a
 * leader that cannot write must step aside for one that can. Also zero overlap, and one
 * worker per stream with /status in agreement within 15 s of the heal.
 */
import { describeScenario, FAULT_MS, LEADER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

describeScenario({
  name: "the leader blackholed from PostgreSQL, then a follower killed",
  gapBoundMs: LEADER_GAP_MS,
  async run(fc) {
    const leader = await fc.leader();
    const victim = fc.rng.pick(fc.followers(leader));
    await sleep(2000);
    const firstFault = await fc.fault(leader, "pg", "blackhole", "leader");
    await sleep(2000);
    await fc.kill9(victim, "follower");
    await sleep(FAULT_MS);
    const lastHeal = await fc.heal(leader, "pg");
    return { firstFault, lastHeal };
  },
});
