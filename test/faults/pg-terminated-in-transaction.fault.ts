/**
 * PostgreSQL ends the agents' connections while the leader is inside a write transaction
 * (what pg_terminate_backend, a fast shutdown, a restart or a pooler failover does):
 * 1. the leadership row is held (FOR UPDATE) until the leader's periodic fenced write waits
 *    for it inside its transaction; then every agent connection is terminated;
 * 2. the same right after a follower is killed (kill -9): the leader's next fenced write;
 * 3. once every stream has one worker again, every agent connection terminated five
 *    times, 300 ms apart.
 * No agent process may end (postgres.js 3.4.9 threw an uncaught error there and the leader
 * died; tools/patch-postgres.mjs), zero overlap, every gap within LEADER_GAP_MS (+ slack),
 * and one worker per stream with /status in agreement within 15 s.
 */
import { AGENT_SESSIONS, type FaultCluster } from "../helpers/fault-cluster.js";
import { describeScenario, LEADER_GAP_MS, sleep } from "../helpers/fault-scenario.js";

/** Terminates every agent connection; says how many there were and how many were inside a transaction. */
async function terminateAll(fc: FaultCluster, why: string): Promise<{ at: number; inTx: number }> {
  // "Inside a transaction": its BEGIN came before the statement now running (an autocommit
  // statement starts its own transaction, so xact_start alone would not tell), or it is idle in one.
  const rows = await fc.sql.unsafe(`select pg_terminate_backend(pid) as done, coalesce(state = 'idle in transaction' or xact_start < query_start, false) as in_tx from pg_stat_activity where ${AGENT_SESSIONS}`);
  const inTx = rows.filter((r) => r.done && r.in_tx).length;
  const at = fc.log.now();
  fc.log.event(`TERMINATE ${rows.filter((r) => r.done).length} agent connections to PostgreSQL (${inTx} inside a transaction): ${why}`, at);
  return { at, inTx };
}

/**
 * Holds the leadership row until an agent's transaction waits for it, then terminates
 * every agent connection and lets the row go. `meanwhile` runs once the row is held.
 */
async function terminateInsideWrite(fc: FaultCluster, why: string, meanwhile?: () => Promise<unknown>): Promise<number> {
  return fc.holdUntilWaiting(
    "select 1 from orchestrator.leadership for update",
    [],
    "leadership",
    "the leader's fenced write to wait for the leadership row inside its transaction",
    async () => {
      const t = await terminateAll(fc, why);
      if (t.inTx === 0) throw new Error(`${why}: no agent connection was inside a transaction when terminated`);
      return t.at;
    },
    meanwhile,
  );
}

describeScenario({
  name: "PostgreSQL terminates the agents' connections inside the leader's transactions",
  gapBoundMs: LEADER_GAP_MS,
  async run(fc) {
    const leader = await fc.leader();
    const firstFault = await terminateInsideWrite(fc, "the leader's periodic write waits for the leadership row");
    await sleep(3000);
    const victim = fc.rng.pick(fc.followers(leader));
    await terminateInsideWrite(fc, `the leader's next fenced write after ${victim} was killed waits for the leadership row`, () => fc.kill9(victim, "follower"));
    // The sweeps start on a fleet that has taken the killed follower's streams over, so
    // that each gap measures one fault (a sweep during the take-over delays it further).
    await fc.stable(`${victim}'s streams served again`, 1000, 30_000);
    fc.log.event(`every stream has one worker again`);
    for (let i = 1; i <= 5; i++) {
      await terminateAll(fc, `sweep ${i} of 5`);
      await sleep(300);
    }
    await sleep(LEADER_GAP_MS + 1000);
    return { firstFault, lastHeal: fc.log.now() };
  },
});
