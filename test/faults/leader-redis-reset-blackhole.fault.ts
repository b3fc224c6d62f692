/**
 * The leader's Redis link is reset, then blackholed for 15 s, then healed.
 * Checked from the workers' records: zero overlap, every gap within LEADER_GAP_MS (+ slack),
 * one worker per stream and /status in agreement within 15 s of the heal.
 */
import { describeScenario, FAULT_MS, LEADER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

describeScenario({
  name: "the leader's Redis link resets then blackholes for 15 s",
  gapBoundMs: LEADER_GAP_MS,
  async run(fc) {
    const leader = await fc.leader();
    const victim = leader;
    await sleep(2000);
    const firstFault = await fc.fault(victim, "redis", "resetThenBlackhole", "leader");
    await sleep(FAULT_MS);
    const lastHeal = await fc.heal(victim, "redis");
    return { firstFault, lastHeal };
  },
});
