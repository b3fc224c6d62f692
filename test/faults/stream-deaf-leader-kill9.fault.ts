/**
 * A follower's worker stops hearing one of its streams (its exit cannot reach it: it
 * reports every capture failed), and one second later the leader is killed (kill -9), in
 * the middle of the failure episode. The stream is silent from the moment its worker went
 * deaf; it must be heard again — on another worker — within STREAM_FAILOVER_AFTER + one
 * report period + LEADER_GAP_MS (+ slack): the episode is timed by PostgreSQL's clock, so
 * the new leader does not restart it. Zero overlap throughout (the deaf worker's hold
 * still counts for overlaps), and one worker per stream with /status in agreement after.
 */
import { describeScenario, LEADER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

const FAILOVER_AFTER_S = 2;
const REPORT_MS = 1000;

describeScenario({
  name: "a stream its worker cannot hear, then the leader killed (kill -9)",
  gapBoundMs: FAILOVER_AFTER_S * 1000 + REPORT_MS + LEADER_GAP_MS,
  cluster: { env: { STREAM_FAILOVER_AFTER: String(FAILOVER_AFTER_S) } },
  async run(fc) {
    const leader = await fc.leader();
    const victim = fc.followers(leader)[0]!;
    const stream = [...(fc.log.servedBy().get(victim) ?? [])].sort()[0];
    if (!stream) throw new Error(`${victim} serves nothing after settling`);
    const firstFault = fc.deafen(victim, stream);
    await sleep(1000);
    await fc.kill9(leader, "leader");
    // Nothing heals: watch the whole bound, then require agreement.
    await sleep(FAILOVER_AFTER_S * 1000 + REPORT_MS + LEADER_GAP_MS + 1000);
    const now = fc.log.now();
    const heardBy = (fc.log.owners().get(stream) ?? []).filter((w) => fc.log.deafSince(w, stream) === Infinity);
    fc.log.event(`stream ${stream} now heard by ${heardBy.join(",") || "nobody"}`, now);
    return { firstFault, lastHeal: now };
  },
});
