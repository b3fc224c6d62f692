/**
 * A follower's agent process is killed (kill -9) and started again at once (same id,
 * port and settings) while its worker keeps running: the worker's lease, granted by the
 * dead process, may still run when the new process starts, so the new process must count
 * the old rows as held by its worker (for a full WORKER_LEASE, or until the worker applies
 * one of its answers) and the leader must not give them to anyone meanwhile.
 *
 * Timings: HEARTBEAT_TIMEOUT 6 s and WORKER_LEASE 4.5 s here (instead of 3 s and 1.8 s),
 * so the worker's lease outlives the restart (0.5–2 s for a start of the built agent on
 * this machine, more under load) and
 * the worker really is still serving its streams when the new process comes up; the
 * history records how many. Zero overlap, every gap within HEARTBEAT_TIMEOUT + 2 s
 * (+ slack), one worker per stream with /status in agreement within 15 s of the restart
 * and again 8 s after it (the new process's rows rewritten and its worker serving them).
 */
import { describeScenario, sleep } from "../helpers/fault-scenario.js";

const HEARTBEAT_TIMEOUT_MS = 6000;

describeScenario({
  name: "a follower killed and restarted while its worker keeps running",
  gapBoundMs: HEARTBEAT_TIMEOUT_MS + 2000,
  holdMs: HEARTBEAT_TIMEOUT_MS + 2000,
  cluster: { env: { HEARTBEAT_TIMEOUT: String(HEARTBEAT_TIMEOUT_MS / 1000), WORKER_LEASE: "4.5", FALLBACK_GRACE: "10" } },
  async run(fc) {
    const victim = fc.rng.pick(fc.followers(await fc.leader()));
    await sleep(1000);
    const worker = fc.workers.get(victim)!;
    const before = worker.serving.size;
    const firstFault = await fc.kill9(victim, "follower");
    const lastHeal = await fc.restart(victim);
    fc.log.event(`worker ${victim} served ${before} streams at the kill and still serves ${worker.serving.size} as the new process listens`, lastHeal);
    return { firstFault, lastHeal };
  },
});
