/**
 * Redis under Sentinel: a real primary, a replica and three sentinels (private
 * redis-server processes on free ports), three agent processes configured with
 * REDIS_SENTINELS only (their REDIS_URL points at a closed port), simulated workers that
 * obey the lease, and an observer sampling every worker's served set every 20 ms.
 *
 * Two faults: a manual failover (SENTINEL FAILOVER) and kill -9 of the primary.
 * Asserted: no stream ever on two workers (zero overlap samples); every stream served
 * again within the bound below; within 15 s of the fault every stream on exactly one
 * worker. Printed: the longest gap, how long each agent's heartbeats failed, the
 * history of the served sets.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { Cluster, FAST_TIMINGS, freePort, waitFor } from "../helpers/cluster.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { SentinelGroup } from "../helpers/sentinel.js";

const STREAMS = 30;
const IDS = ["s1", "s2", "s3"];
const catalog = Array.from({ length: STREAMS }, (_, i) => String(i + 1));
const HEARTBEAT_TIMEOUT_MS = Number(FAST_TIMINGS.HEARTBEAT_TIMEOUT) * 1000;
const LEADER_LEASE_TTL_MS = Number(FAST_TIMINGS.LEADER_LEASE_TTL) * 1000;
const DOWN_AFTER_MS = 1000;
const FAILOVER_TIMEOUT_MS = 5000;
/**
 * Manual failover: the clients switch within a fraction of a second (CLIENT KILL by the
 * sentinels, +switch-master), so the worst that may follow is what any coordination blip
 * may cause: a member the leader finds silent (HEARTBEAT_TIMEOUT), a lost or expired
 * lease to win again (LEADER_LEASE_TTL), one heartbeat + one long-poll to hand over (2 s).
 */
const BOUND_MS = HEARTBEAT_TIMEOUT_MS + LEADER_LEASE_TTL_MS + 2000;
/**
 * kill -9: nobody can write anywhere until the sentinels promote the replica: they notice
 * after down-after-milliseconds, agree (quorum 2), elect a leader among themselves and
 * promote. The promotion of one attempt is bounded by failover-timeout (after it the
 * attempt is abandoned; the test then fails on the switch time itself). So the bound adds
 * DOWN_AFTER + FAILOVER_TIMEOUT to the manual one.
 */
const KILL_BOUND_MS = BOUND_MS + DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS;
const EXACTLY_ONE_WITHIN_MS = 15_000;
const report: string[] = [];

function note(line: string): void {
  report.push(line);
  // eslint-disable-next-line no-console
  console.log(`[sentinel] ${line}`);
}

/** The served sets over time (one line per change) and what /health said about heartbeats. */
class History {
  readonly lines: string[] = [];
  /** Per agent: longest stretch of /health reporting a failed heartbeat, and the errors seen. */
  readonly hbFailedMs = new Map<string, number>();
  readonly hbErrors = new Set<string>();
  private failingSince = new Map<string, number>();
  private last = "";
  private timers: NodeJS.Timeout[] = [];
  private t0 = performance.now();

  constructor(private readonly cluster: Cluster) {}

  start(): void {
    this.timers.push(setInterval(() => this.sample(), 100));
    this.timers.push(setInterval(() => void this.health(), 200));
  }

  mark(what: string): void {
    this.lines.push(`${this.t()} ** ${what}`);
  }

  reset(): void {
    this.hbFailedMs.clear();
    this.hbErrors.clear();
    this.failingSince.clear();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
  }

  private t(): string {
    return `+${((performance.now() - this.t0) / 1000).toFixed(2)}s`;
  }

  private sample(): void {
    const parts = IDS.map((id) => `${id}:${this.cluster.agents.get(id)?.worker?.serving.size ?? 0}`);
    const o = this.cluster.observer;
    const line = `${parts.join(" ")} unserved:${o.unserved().length} overlaps:${o.overlaps.length}`;
    if (line !== this.last) this.lines.push(`${this.t()} ${line}`);
    this.last = line;
    if (this.lines.length > 4000) this.lines.splice(0, 1000);
  }

  private async health(): Promise<void> {
    await Promise.all(
      IDS.map(async (id) => {
        const h = (await this.cluster.status(id).catch(() => undefined)) as { heartbeat?: { ok: boolean; error: string | null }; leader?: string | null; mode?: string } | undefined;
        if (!h?.heartbeat) return;
        const now = performance.now();
        if (!h.heartbeat.ok) {
          if (!this.failingSince.has(id)) {
            this.failingSince.set(id, now);
            this.lines.push(`${this.t()} ${id} heartbeat failing: ${h.heartbeat.error ?? "?"} (leader ${h.leader ?? "none"}, ${h.mode})`);
          }
          if (h.heartbeat.error) this.hbErrors.add(h.heartbeat.error.slice(0, 90));
          this.hbFailedMs.set(id, Math.max(this.hbFailedMs.get(id) ?? 0, now - this.failingSince.get(id)!));
        } else if (this.failingSince.has(id)) {
          this.failingSince.delete(id);
          this.lines.push(`${this.t()} ${id} heartbeat ok again (leader ${h.leader ?? "none"}, ${h.mode})`);
        }
      }),
    );
  }
}

describe("Redis Sentinel failover", { timeout: 150_000 }, () => {
  let group: SentinelGroup | undefined;
  let db: TestDatabase | undefined;
  let cluster: Cluster;
  let history: History;
  const prefix = uniqueName("sentinel");

  beforeAll(async () => {
    const t0 = performance.now();
    group = await SentinelGroup.start({ downAfterMs: DOWN_AFTER_MS, failoverTimeoutMs: FAILOVER_TIMEOUT_MS });
    db = await createTestDatabase("sentinel");
    await createCatalog(db.sql, STREAMS);
    // REDIS_URL points at a closed port: only the sentinels can lead an agent to Redis.
    const nowhere = `redis://127.0.0.1:${await freePort()}`;
    cluster = new Cluster({ databaseUrl: db.url, redisUrl: nowhere, prefix, env: { REDIS_SENTINELS: group.sentinelList, SHUTDOWN_DRAIN: "false" } });
    note(`sentinel group ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    history = new History(cluster);
    await Promise.all(IDS.map((id) => cluster.start(id, { capacity: 20 })));
    cluster.observer.start(catalog);
    history.start();
    await waitFor(() => cluster.observer.unserved().length === 0, 60_000, "every stream to be served");
    await settled("a settled first assignment");
    note(`fleet stable ${((performance.now() - t0) / 1000).toFixed(1)} s after the start`);
  }, 120_000);

  afterEach((ctx) => {
    // SENTINEL_TEST_HISTORY=1 prints the history after every test.
    if (ctx.task.result?.state !== "fail" && cluster?.observer.overlaps.length === 0 && !process.env.SENTINEL_TEST_HISTORY) return;
    console.log(`history (${ctx.task.name}):\n  ${history.lines.slice(-150).join("\n  ")}`);
    const o = cluster.observer.overlaps[0];
    if (o) console.log(`first overlap at ${o.at.toFixed(0)} ms: stream ${o.stream} on ${o.workers.join(" and ")} (${cluster.observer.overlaps.length} samples)`);
    for (const a of IDS) console.log(`--- ${a}\n${cluster.logs(a).split("\n").filter((l) => /BALANCE|INSTANCE|warn|error|mode|leader/i.test(l)).slice(-40).join("\n")}`);
  });

  afterAll(async () => {
    history?.stop();
    await cluster?.close();
    await group?.stop();
    await db?.drop();
    // eslint-disable-next-line no-console
    console.log(["sentinel report:", ...report].join("\n  "));
  });

  /** A ready leader that every agent follows, in orchestrated mode. */
  async function leader(): Promise<string> {
    let id: string | null = null;
    await waitFor(async () => {
      const views = await Promise.all(IDS.map(async (a) => (await cluster.status(a, "/status")) as { leader: { id: string; ready: boolean } | null }));
      const modes = await Promise.all(IDS.map(async (a) => (await cluster.status(a)).mode));
      const l = views[0]?.leader;
      id = l?.ready && views.every((v) => v.leader?.id === l.id) && modes.every((m) => m === "orchestrated") ? l.id : null;
      return id !== null;
    }, 60_000, "a ready leader followed by every agent", 100);
    return id!;
  }

  /** Every stream on exactly one worker right now. */
  function exactlyOne(): boolean {
    const o = cluster.observer;
    return o.unserved().length === 0 && IDS.every((a) => IDS.every((b) => a === b || [...(cluster.get(a).worker?.serving ?? [])].every((s) => !cluster.get(b).worker?.serving.has(s))));
  }

  /**
   * Until every stream has been on exactly one worker for 1.5 s. (Not cluster.stable: on
   * a busy 2-core machine a worker's lease may lapse for a tenth of a second now and then,
   * and a 3 s quiet period may never come.)
   */
  async function settled(what: string): Promise<void> {
    let since = performance.now();
    await waitFor(() => {
      if (!exactlyOne()) since = performance.now();
      return performance.now() - since >= 1500;
    }, 90_000, what, 20);
  }

  function alive(port: number): boolean {
    const p = group!.nodes.get(port);
    return !!p && p.exitCode === null && p.signalCode === null;
  }

  /** A key's value on `port` (with `field`: that field of a hash). */
  async function read(port: number, key: string, field?: string): Promise<string | null> {
    const r = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on("error", () => {});
    try {
      await r.connect();
      return field === undefined ? await r.get(key) : await r.hget(key, field);
    } finally {
      r.disconnect();
    }
  }

  /**
   * Each agent's latest heartbeat on `port`: the feed id of its newest entry in the
   * heartbeat feed ("" when none among the last 500 entries).
   */
  async function latestBeats(port: number): Promise<string[]> {
    const r = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on("error", () => {});
    try {
      await r.connect();
      const entries = await r.xrevrange(`${prefix}:feed`, "+", "-", "COUNT", 500);
      const latest = new Map<string, string>();
      for (const [fid, fields] of entries) {
        const id = fields[fields.indexOf("id") + 1];
        if (id !== undefined && !latest.has(id)) latest.set(id, fid);
      }
      return IDS.map((id) => latest.get(id) ?? "");
    } finally {
      r.disconnect();
    }
  }

  /** Whether feed id `a` is later than `b` ("" is earliest). */
  function later(a: string, b: string): boolean {
    if (b === "") return a !== "";
    if (a === "") return false;
    const [am, as] = a.split("-").map(BigInt) as [bigint, bigint];
    const [bm, bs] = b.split("-").map(BigInt) as [bigint, bigint];
    return am > bm || (am === bm && as > bs);
  }

  /** Every agent's heartbeats on `port` move forward: the fleet writes to that node. */
  async function fleetWritesTo(port: number): Promise<void> {
    const seqs = () => latestBeats(port);
    const before = await seqs();
    try {
      await waitFor(async () => (await seqs()).every((s, i) => later(s, before[i]!)), 15_000, `every agent to heartbeat on the master ${port}`, 100);
    } catch (err) {
      const now = await seqs();
      for (const [i, id] of IDS.entries()) {
        const h = (await cluster.status(id).catch(() => ({}))) as { heartbeat?: unknown; dependencies?: unknown };
        console.log(`${id}: latest feed entry on ${port} ${before[i]} → ${now[i]}; heartbeat ${JSON.stringify(h.heartbeat)}; dependencies ${JSON.stringify(h.dependencies)}`);
      }
      throw err;
    }
  }

  /**
   * Runs one fault and checks the bounds. `fault` returns once the fault is done; the
   * clock starts when it is called.
   */
  async function survive(what: string, boundMs: number, fault: (old: number) => Promise<void> | void): Promise<void> {
    const g = group!;
    const old = await g.master();
    const leaderBefore = await leader();
    const incBefore = await read(old, `${prefix}:cluster`, "inc");
    await settled(`settled before ${what}`);
    cluster.observer.resetGaps();
    history.reset();
    const overlapsBefore = cluster.observer.overlaps.length;
    history.mark(`${what}: master ${old}, leader ${leaderBefore}`);
    const t0 = performance.now();
    await fault(old);
    let next = old;
    const switchMs = await waitFor(async () => {
      const ms = await g.masters();
      next = ms[0] ?? old;
      return next !== old && ms.every((m) => m === next);
    }, 30_000, `the sentinels to name a new master after ${what}`, 50);
    history.mark(`sentinels name ${next} (${(switchMs / 1000).toFixed(2)} s)`);
    // Within 15 s of the fault: every stream on exactly one worker.
    await waitFor(exactlyOne, Math.max(1000, EXACTLY_ONE_WITHIN_MS - (performance.now() - t0)), `every stream on exactly one worker within ${EXACTLY_ONE_WITHIN_MS / 1000} s of ${what}`, 20);
    await fleetWritesTo(next);
    if (alive(old)) {
      // The old primary stays a writable master for ~10 s after the switch, until the
      // sentinels convert it; a client still on it would write heartbeats that count
      // nowhere (and are lost). Every agent must have left it (failoverDetector).
      const before = await latestBeats(old);
      await new Promise((r) => setTimeout(r, 2000));
      const after = await latestBeats(old);
      const role = group!.cli(old, "ROLE").split("\n")[0];
      // Still a master at the end, so throughout: a newer entry is a stray heartbeat.
      // (Once converted, it replicates the new master's keys and tells nothing.)
      const stray = IDS.filter((_, i) => later(after[i]!, before[i]!));
      if (role === "master") expect(stray, "heartbeats still written to the old primary").toEqual([]);
      history.mark(`old primary ${old} is ${role}${role === "master" ? "; no agent wrote to it" : ""}`);
    }
    // Keep watching as long as a late consequence could take (a member found silent, a
    // lease lost), so a late move or overlap is caught here and not in the next test.
    await new Promise((r) => setTimeout(r, Math.max(0, boundMs + 1000 - (performance.now() - t0))));
    await waitFor(exactlyOne, 30_000, `every stream on exactly one worker after ${what}`, 20);
    const leaderAfter = await leader();
    const incAfter = await read(next, `${prefix}:cluster`, "inc");
    const gap = cluster.observer.maxGapMs();
    const hb = IDS.map((id) => `${id} ${((history.hbFailedMs.get(id) ?? 0) / 1000).toFixed(1)} s`).join(", ");
    note(
      `${what}: sentinels switched ${old}→${next} in ${(switchMs / 1000).toFixed(2)} s; longest unserved ${(gap / 1000).toFixed(2)} s (bound ${boundMs / 1000} s); ` +
        `overlap samples ${cluster.observer.overlaps.length - overlapsBefore}; heartbeats failed for ${hb}${history.hbErrors.size ? ` (${[...history.hbErrors].join(" | ")})` : ""}; ` +
        `leader ${leaderBefore}→${leaderAfter}; incarnation ${incBefore === incAfter ? "unchanged" : `changed ${incBefore}→${incAfter}`}`,
    );
    expect(cluster.observer.overlaps).toEqual([]);
    expect(gap).toBeLessThan(boundMs);
    if (what.startsWith("kill")) expect(switchMs).toBeLessThan(DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS);
  }

  it("SENTINEL FAILOVER: no overlap, every stream served again within the bound", async () => {
    await survive("SENTINEL FAILOVER", BOUND_MS, () => {
      const sentinel = [...group!.sentinels.keys()][0]!;
      expect(group!.cli(sentinel, "SENTINEL", "FAILOVER", "mymaster").trim()).toBe("OK");
    });
    // The old primary must rejoin as a replica before the next test can fail over again.
    await group!.agreed(await group!.master(), 1);
  });

  it("kill -9 of the primary: no overlap, every stream served again within the bound", async () => {
    await survive("kill -9 of the primary", KILL_BOUND_MS, (old) => group!.kill9(old));
  });
});
