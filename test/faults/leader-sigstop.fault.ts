/**
 * The leader's agent process is frozen (SIGSTOP) for 8 s, past its leader lease
 * (LEADER_LEASE_TTL) and its worker's lease (WORKER_LEASE), then resumed (SIGCONT). Its
 * worker keeps running and must stop at its lease's end; a new leader takes over; the
 * resumed process must find its leadership and its rows gone (fenced by the epoch,
 * resync after the freeze) and serve nothing it was not given again. Zero overlap,
 * every gap within HEARTBEAT_TIMEOUT + 2 s + LEADER_LEASE_TTL (+ slack), one worker per
 * stream with /status in agreement within 15 s of the SIGCONT and again 6 s after it
 * (what the resumed process does is watched too).
 */
import { describeScenario, LEADER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

describeScenario({
  name: "the leader frozen (SIGSTOP) for 8 s, then resumed",
  gapBoundMs: LEADER_GAP_MS,
  holdMs: 6000,
  async run(fc) {
    const leader = await fc.leader();
    await sleep(1000);
    const firstFault = fc.sigstop(leader, "leader");
    await sleep(8000);
    const lastHeal = fc.sigcont(leader);
    return { firstFault, lastHeal };
  },
});
