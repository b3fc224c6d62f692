/**
 * The leader's PostgreSQL link is blackholed while the leader is INSIDE a fenced write
 * transaction: PostgreSQL keeps that session open, idle in its transaction, holding the
 * share lock on the leadership row that every fenced write takes, and never hears from
 * its client again. 2 s later a follower is killed (kill -9); the link heals 15 s after
 * the kill. The killed follower's streams must be served again within the leader's bound:
 * the leader steps aside, and its successor's epoch bump (an UPDATE of that row) must not
 * wait for the lost session for ever. Zero overlap, one worker per stream and /status in
 * agreement within 15 s of the heal.
 *
 * How the write is caught inside its transaction: the test holds a row of the instances
 * table (FOR UPDATE) until the leader's periodic stats write, which has already taken the
 * leadership row, waits for it; then it blackholes the link and lets the row go, so the
 * update completes on the server and its answer is lost.
 */
import { waitFor } from "../helpers/cluster.js";
import { AGENT_SESSIONS } from "../helpers/fault-cluster.js";
import { describeScenario, FAULT_MS, LEADER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

describeScenario({
  name: "the leader blackholed from PostgreSQL inside its write transaction, then a follower killed",
  gapBoundMs: LEADER_GAP_MS,
  async run(fc) {
    const leader = await fc.leader();
    const victim = fc.rng.pick(fc.followers(leader));
    const firstFault = await fc.holdUntilWaiting(
      "select 1 from orchestrator.instances where id = $1 for update",
      [victim],
      "instances",
      "the leader's stats write to wait for an instances row inside its transaction",
      () => fc.fault(leader, "pg", "blackhole", "leader, inside its write transaction"),
    );
    const idle = await waitFor(
      async () =>
        (await fc.sql.unsafe(`select 1 from pg_stat_activity where ${AGENT_SESSIONS} and state = 'idle in transaction'`)).length > 0,
      5000,
      "the leader's session idle in its transaction",
      20,
    ).then(
      () => true,
      () => false,
    );
    if (!idle) throw new Error("the leader's session was not seen idle in its transaction: the scenario did not catch the write inside it");
    fc.log.event("the leader's session is idle in its transaction, its answer lost");
    await sleep(2000);
    await fc.kill9(victim, "follower");
    await sleep(FAULT_MS);
    const lastHeal = await fc.heal(leader, "pg");
    return { firstFault, lastHeal };
  },
});
