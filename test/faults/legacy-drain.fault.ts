/**
 * Workers of the older API (register, then GET /api/streams/assign every 1–3 s; dropped
 * streams stop 0.8–1.5 s after the answer, like fingerv7 cancelling a capture in
 * progress). A follower's agent is drained (POST /instances/:id/drain with the admin
 * token): every planned move away from it must be break-before-make, zero overlap, and
 * within 15 s of the drained worker serving nothing, one worker per stream and /status in
 * agreement. The gap bound is the older API's own: a dropped stream counts as held until
 * the old worker's next-but-one call (two polls), and the new worker starts it at its next
 * poll (a third): 3 × the longest poll (3 s), plus a second for the leader's ticks.
 *
 * WORKER_TIMEOUT is 5 s here (the agent's default ratio: 5 s against fingerv7's 3 s poll),
 * so the 1–3 s polls stay "well within WORKER_TIMEOUT" as docs/legacy-workers.md asks.
 */
import { waitFor } from "../helpers/cluster.js";
import { describeScenario } from "../helpers/fault-scenario.js";

const LONGEST_POLL_MS = 3000;

describeScenario({
  name: "an older-API worker's agent drained",
  gapBoundMs: 3 * LONGEST_POLL_MS + 1000,
  cluster: { workerKind: () => "legacy", legacyStopLateMs: [800, 1500], legacyPollMs: [1000, LONGEST_POLL_MS], env: { WORKER_TIMEOUT: "5" } },
  async run(fc) {
    const victim = fc.rng.pick(fc.followers(await fc.leader()));
    const moving = fc.workers.get(victim)!.serving.size;
    const firstFault = await fc.drain(victim);
    await waitFor(() => fc.workers.get(victim)!.serving.size === 0, 60_000, `the drained worker ${victim} to serve nothing`, 50).catch((err: Error) =>
      fc.log.event(`drain incomplete: ${err.message}`),
    );
    const lastHeal = fc.log.now();
    fc.log.event(`drained worker ${victim} serves nothing (${moving} streams moved)`, lastHeal);
    return { firstFault, lastHeal };
  },
});
