/**
 * A follower cut from both stores (its Redis and PostgreSQL links blackholed at once) for
 * 15 s, then healed. Checked from the workers' records: zero overlap, every gap within
 * HEARTBEAT_TIMEOUT + 2 s (+ slack), one worker per stream and /status in agreement within
 * 15 s of the heal.
 */
import { describeScenario, FAULT_MS, FOLLOWER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

describeScenario({
  name: "a follower cut from both stores (blackhole) for 15 s",
  gapBoundMs: FOLLOWER_GAP_MS,
  async run(fc) {
    const victim = fc.rng.pick(fc.followers(await fc.leader()));
    await sleep(2000);
    const firstFault = await fc.fault(victim, "redis", "blackhole", "follower");
    await fc.fault(victim, "pg", "blackhole", "follower");
    await sleep(FAULT_MS);
    await fc.heal(victim, "redis");
    const lastHeal = await fc.heal(victim, "pg");
    return { firstFault, lastHeal };
  },
});
