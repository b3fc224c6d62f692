/**
 * The chaos suite: agent processes, simulated workers that obey the lease, and an
 * observer sampling every worker's served set every 20 ms. Private PostgreSQL and Redis
 * servers on free ports, so they can be stopped and restarted.
 *
 * Asserted strictly: no stream is ever served by two workers (zero overlap samples).
 * Asserted with generous margins (slow CI): every stream is served again within
 * HEARTBEAT_TIMEOUT + 2 s of a failure (+ 3 s of slack for a busy machine). The tight
 * figures are printed for the report.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Cluster, FAST_TIMINGS, waitFor } from "../helpers/cluster.js";
import { privateServers, type PrivatePostgres, type PrivateRedis } from "../helpers/private-servers.js";

const STREAMS = 45;
const TIMEOUT_MS = Number(FAST_TIMINGS.HEARTBEAT_TIMEOUT) * 1000;
const BOUND_MS = TIMEOUT_MS + 2000 + 3000;
const IDS = ["a1", "a2", "a3"];
const catalog = Array.from({ length: STREAMS }, (_, i) => String(i + 1));
const report: string[] = [];

function note(line: string): void {
  report.push(line);
  // eslint-disable-next-line no-console
  console.log(`[chaos] ${line}`);
}

describe("chaos", { timeout: 120_000 }, () => {
  let pg: PrivatePostgres;
  let redis: PrivateRedis;
  let cluster: Cluster;
  let stopServers: () => Promise<void>;

  beforeAll(async () => {
    ({ pg, redis, stop: stopServers } = await privateServers(STREAMS));
    cluster = new Cluster({ databaseUrl: pg.url, redisUrl: redis.url, prefix: "chaos", env: { SHUTDOWN_DRAIN: "false" } });
    await Promise.all(IDS.map((id) => cluster.start(id, { capacity: 30 })));
    cluster.observer.start(catalog);
    await waitFor(() => cluster.observer.unserved().length === 0, 30_000, "every stream to be served");
  }, 120_000);

  let dumped = false;
  afterEach(() => {
    // On the first overlap, show what each agent decided, to find the cause.
    if (dumped || !cluster || cluster.observer.overlaps.length === 0) return;
    dumped = true;
    const o = cluster.observer.overlaps[0]!;
    console.log(`first overlap at ${o.at.toFixed(0)} ms: stream ${o.stream} on ${o.workers.join(" and ")} (${cluster.observer.overlaps.length} samples)`);
    for (const a of IDS) console.log(`--- ${a}\n${cluster.logs(a).split("\n").filter((l) => /BALANCE|INSTANCE|warn|mode/.test(l)).slice(-40).join("\n")}`);
  });

  afterAll(async () => {
    await cluster?.close();
    await stopServers?.();
    // eslint-disable-next-line no-console
    console.log(["chaos report:", ...report].join("\n  "));
  });

  /** Waits until every stream is served and the fleet is back to three healthy workers. */
  async function settle(what: string): Promise<number> {
    return waitFor(() => cluster.observer.unserved().length === 0, 60_000, what, 20);
  }

  const stable = (what: string, quietMs = 3000) => cluster.stable(what, quietMs);

  /** A leader that has won its epoch (ready), with every agent following it. */
  async function leader(): Promise<string> {
    let id: string | null = null;
    await waitFor(async () => {
      const live = IDS.filter((a) => cluster.get(a).proc.exitCode === null && cluster.get(a).proc.signalCode === null);
      const views = await Promise.all(live.map(async (a) => (await cluster.status(a, "/status")) as { leader: { id: string; ready: boolean } | null }));
      const modes = await Promise.all(live.map(async (a) => (await cluster.status(a)).mode));
      const l = views[0]?.leader;
      id = l?.ready && views.every((v) => v.leader?.id === l.id) && modes.every((m) => m === "orchestrated") ? l.id : null;
      return id !== null;
    }, 60_000, "a ready leader followed by every agent", 100);
    return id!;
  }

  /** Waits for a restarted agent to serve again; on failure shows what every agent decided. */
  async function servesAgain(id: string, what: string): Promise<void> {
    try {
      await waitFor(() => cluster.get(id).worker!.serving.size > 0, 60_000, what);
    } catch (err) {
      const h = await cluster.status(id).catch(() => ({}));
      console.log(`${id} health: ${JSON.stringify(h).slice(0, 600)}`);
      for (const a of IDS) console.log(`--- ${a}\n${cluster.logs(a).split("\n").filter((l) => /BALANCE|INSTANCE|warn|mode/.test(l)).slice(-25).join("\n")}`);
      throw err;
    }
  }

  /** Until the victim's worker has stopped (lease over) and every stream is served by the others. */
  async function failover(victim: string, what: string): Promise<number> {
    return waitFor(() => cluster.get(victim).worker!.serving.size === 0 && cluster.observer.unserved().length === 0, 60_000, what, 20);
  }

  function follower(of: string): string {
    return IDS.find((id) => id !== of)!;
  }

  it("kill -9 of a follower: its streams are served again within the bound", async () => {
    await stable("a stable first assignment");
    const victim = follower(await leader());
    const orphaned = cluster.get(victim).worker!.serving.size;
    cluster.observer.resetGaps();
    await cluster.kill9(victim);
    const t = await failover(victim, "failover after kill -9 of a follower");
    note(`kill -9 follower ${victim}: ${orphaned} streams served elsewhere ${(t / 1000).toFixed(2)} s after the kill; longest unserved ${(cluster.observer.maxGapMs() / 1000).toFixed(2)} s`);
    expect(t).toBeLessThan(BOUND_MS);
    await cluster.restart(victim);
    await servesAgain(victim, "the restarted follower to get a share again");
    expect(cluster.observer.overlaps).toEqual([]);
  });

  it("kill -9 of the leader: a new leader and every stream served within the bound", async () => {
    const victim = await leader();
    cluster.observer.resetGaps();
    await cluster.kill9(victim);
    const t = await failover(victim, "failover after kill -9 of the leader");
    const next = await leader();
    note(`kill -9 leader ${victim}: new leader ${next}, all served elsewhere ${(t / 1000).toFixed(2)} s after the kill; longest unserved ${(cluster.observer.maxGapMs() / 1000).toFixed(2)} s`);
    expect(next).not.toBe(victim);
    expect(t).toBeLessThan(BOUND_MS);
    await cluster.restart(victim);
    await servesAgain(victim, "the restarted leader to get a share again");
    expect(cluster.observer.overlaps).toEqual([]);
  });

  for (const role of ["leader", "follower"] as const) {
    it(`SIGSTOP of the ${role} for longer than HEARTBEAT_TIMEOUT, then SIGCONT: no overlap, failover within the bound`, async () => {
      const l = await leader();
      const victim = role === "leader" ? l : follower(l);
      const frozen = [...cluster.get(victim).worker!.serving];
      cluster.observer.resetGaps();
      cluster.signal(victim, "SIGSTOP");
      const t0 = performance.now();
      // Its worker must stop on its own when the lease runs out, and the others take over.
      const t = await failover(victim, "failover while frozen");
      note(`SIGSTOP ${role} ${victim}: ${frozen.length} streams served elsewhere ${(t / 1000).toFixed(2)} s after the stop; longest unserved ${(cluster.observer.maxGapMs() / 1000).toFixed(2)} s`);
      expect(t).toBeLessThan(BOUND_MS);
      await new Promise((r) => setTimeout(r, Math.max(0, TIMEOUT_MS + 1000 - (performance.now() - t0))));
      cluster.signal(victim, "SIGCONT");
      // It comes back, withdraws what it had, and is given a fair share again.
      await waitFor(() => cluster.get(victim).worker!.serving.size > 0, 60_000, "the resumed agent to get streams again");
      await settle("all served after SIGCONT");
      expect(cluster.observer.overlaps).toEqual([]);
    });
  }

  it("Redis stopped and restarted (data lost): nothing unserved under ON_COORDINATION_LOSS=keep, no overlap", async () => {
    cluster.observer.resetGaps();
    await redis.down();
    await new Promise((r) => setTimeout(r, TIMEOUT_MS + 1000));
    const during = cluster.observer.unserved().length;
    await redis.up();
    const t = await settle("all served after Redis came back");
    await leader();
    note(`Redis outage ${(TIMEOUT_MS + 1000) / 1000} s: ${during} streams unserved at its end, longest gap ${(cluster.observer.maxGapMs() / 1000).toFixed(2)} s, settled ${(t / 1000).toFixed(2)} s after restart`);
    expect(during).toBe(0);
    expect(cluster.observer.overlaps).toEqual([]);
  });

  it("PostgreSQL stopped and restarted: agents keep serving, the leader recovers without a restart", async () => {
    const l = await leader();
    await stable("settled before the PostgreSQL outage");
    cluster.observer.resetGaps();
    const before = new Map(cluster.observer.served());
    await pg.down();
    // Operators' health checks keep polling during the outage; they must not slow recovery.
    let polling = true;
    const poller = (async () => {
      while (polling) {
        await Promise.all(IDS.map((id) => fetch(`${cluster.get(id).url}/health`).catch(() => undefined)));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await new Promise((r) => setTimeout(r, TIMEOUT_MS + 1000));
    const during = cluster.observer.unserved().length;
    const health = await cluster.status(l);
    expect((health.dependencies as { postgres: { ok: boolean } }).postgres.ok).toBe(false);
    await pg.up();
    await waitFor(async () => ((await cluster.status(l)).dependencies as { postgres: { ok: boolean } }).postgres.ok, 30_000, "the leader to see PostgreSQL again");
    polling = false;
    await poller;
    // The leader writes again: kill a follower and watch it fail over.
    const victim = follower(l);
    await cluster.kill9(victim);
    const t = await failover(victim, "failover after PostgreSQL came back");
    if (t > BOUND_MS) for (const id of IDS.filter((x) => x !== victim)) console.log(`--- ${id}\n${cluster.logs(id).split("\n").filter((l) => /BALANCE|INSTANCE|warn|mode/.test(l)).slice(-25).join("\n")}`);
    expect(t).toBeLessThan(BOUND_MS);
    note(`PostgreSQL outage ${(TIMEOUT_MS + 1000) / 1000} s: ${during} unserved, longest gap ${(cluster.observer.maxGapMs() / 1000).toFixed(2)} s; failover afterwards ${(t / 1000).toFixed(2)} s`);
    expect(during).toBe(0);
    expect(before.size).toBe(STREAMS);
    await cluster.restart(victim);
    await servesAgain(victim, "the restarted follower to get a share again");
    expect(cluster.observer.overlaps).toEqual([]);
  });

  it("a rolling restart (SIGTERM, SHUTDOWN_DRAIN=false, same INSTANCE_ID) moves nothing", async () => {
    await leader();
    await stable("a stable assignment before the rolling restart");
    const owner = new Map(cluster.observer.served());
    cluster.observer.resetGaps();
    for (const id of IDS) {
      const a = cluster.get(id);
      a.proc.kill("SIGTERM");
      await a.exited;
      await cluster.restart(id);
      try {
        await waitFor(() => [...owner].filter(([, w]) => w === id).every(([s]) => cluster.get(id).worker!.serving.has(s)), 60_000, `${id} to serve its streams again`);
      } catch (err) {
        const want = [...owner].filter(([, w]) => w === id).map(([s]) => s);
        console.log(`wanted ${want.join(",")}; serving ${[...cluster.get(id).worker!.serving].join(",")}; others: ${[...cluster.observer.served()].filter(([s]) => want.includes(s)).map(([s, w]) => `${s}@${w}`).join(" ")}`);
        for (const a of IDS) console.log(`--- ${a}\n${cluster.logs(a).split("\n").filter((l) => /BALANCE|INSTANCE|warn/.test(l)).slice(-30).join("\n")}`);
        throw err;
      }
    }
    const after = cluster.observer.served();
    const moved = [...owner].filter(([s, w]) => after.get(s) !== w).length;
    note(`rolling restart of ${IDS.length} agents: ${moved} of ${owner.size} streams moved; longest unserved ${(cluster.observer.maxGapMs() / 1000).toFixed(2)} s`);
    expect(moved).toBe(0);
    expect(cluster.observer.overlaps).toEqual([]);
  });

  it("SIGTERM drains: the streams are handed off, the agent exits in bounded time", async () => {
    await settle("settled before SIGTERM");
    const victim = follower(await leader());
    // This agent runs with the default SHUTDOWN_DRAIN=true.
    await cluster.kill9(victim);
    await cluster.restart(victim, { env: { SHUTDOWN_DRAIN: "true" } });
    // Its worker still runs on the killed process's lease for a moment: wait until the new
    // process serves it, the fleet follows the leader and nothing moves any more.
    await waitFor(async () => ((await cluster.status(victim)).streams as { served: number }).served > 0, 60_000, "the restarted agent to serve");
    await leader();
    await stable("settled before SIGTERM");
    expect(cluster.get(victim).worker!.serving.size).toBeGreaterThan(0);
    const held = cluster.get(victim).worker!.serving.size;
    cluster.observer.resetGaps();
    const a = cluster.get(victim);
    a.proc.kill("SIGTERM");
    const t0 = performance.now();
    const code = await a.exited;
    const exitS = (performance.now() - t0) / 1000;
    const t = await settle("all served after the drain");
    const gap = cluster.observer.maxGapMs();
    if (gap >= TIMEOUT_MS) for (const id of IDS) console.log(`--- ${id}\n${cluster.logs(id).split("\n").filter((l) => /BALANCE|INSTANCE|warn|error/.test(l)).slice(-40).join("\n")}`);
    note(`SIGTERM (drain) ${victim}: ${held} streams handed off, exited after ${exitS.toFixed(2)} s (code ${code}); longest unserved ${(gap / 1000).toFixed(2)} s`);
    expect(t).toBeLessThan(1000);
    expect(gap).toBeLessThan(TIMEOUT_MS);
    expect(code).toBe(0);
    expect(exitS).toBeLessThan(Number(FAST_TIMINGS.DRAIN_TIMEOUT) + 5);
    expect(cluster.observer.overlaps).toEqual([]);
  });
});
