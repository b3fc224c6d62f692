/**
 * A follower's Redis refuses connections for 15 s (existing ones reset), then accepts again.
 * Checked from the workers' records: zero overlap, every gap within FOLLOWER_GAP_MS (+ slack),
 * one worker per stream and /status in agreement within 15 s of the heal.
 */
import { describeScenario, FAULT_MS, FOLLOWER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

describeScenario({
  name: "a follower's Redis refused for 15 s",
  gapBoundMs: FOLLOWER_GAP_MS,
  async run(fc) {
    const leader = await fc.leader();
    const victim = fc.rng.pick(fc.followers(leader));
    await sleep(2000);
    const firstFault = await fc.fault(victim, "redis", "refuse", "follower");
    await sleep(FAULT_MS);
    const lastHeal = await fc.heal(victim, "redis");
    return { firstFault, lastHeal };
  },
});
