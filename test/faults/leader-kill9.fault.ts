/**
 * The leader's agent process is killed (kill -9) and stays dead; its worker keeps running
 * and stops when its lease runs out. Its streams must be served again within
 * HEARTBEAT_TIMEOUT + 2 s + LEADER_LEASE_TTL (+ slack) — a new leader is elected once the
 * dead one's lease expires — with zero overlap, and one worker per stream with /status in
 * agreement after the bound has passed (8 s after the kill, then within 15 s).
 */
import { describeScenario, LEADER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

describeScenario({
  name: "the leader killed (kill -9)",
  gapBoundMs: LEADER_GAP_MS,
  async run(fc) {
    const leader = await fc.leader();
    await sleep(1000);
    const firstFault = await fc.kill9(leader, "leader");
    // Nothing heals: watch the failover for the whole bound, then require agreement.
    await sleep(LEADER_GAP_MS + 1000);
    return { firstFault, lastHeal: fc.log.now() };
  },
});
