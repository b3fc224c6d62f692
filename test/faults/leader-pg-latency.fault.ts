/**
 * 800 ms of added round-trip latency on the leader's PostgreSQL link for 15 s.
 * Checked from the workers' records: zero overlap, every gap within LEADER_GAP_MS (+ slack),
 * one worker per stream and /status in agreement within 15 s of the heal.
 */
import { describeScenario, FAULT_MS, LEADER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

describeScenario({
  name: "800 ms latency on the leader's PostgreSQL link for 15 s",
  gapBoundMs: LEADER_GAP_MS,
  async run(fc) {
    const leader = await fc.leader();
    const victim = leader;
    await sleep(2000);
    const firstFault = await fc.fault(victim, "pg", { latency: 800 }, "leader");
    await sleep(FAULT_MS);
    const lastHeal = await fc.heal(victim, "pg");
    return { firstFault, lastHeal };
  },
});
