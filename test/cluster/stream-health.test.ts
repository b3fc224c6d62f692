/**
 * Stream health under real processes: four agents (LABELS exit=nl on n1, n2; exit=br on
 * b1, b2), each with a simulated worker that reports every capture's outcome through
 * /v1/report and fails by its rules (tools/sim-worker.ts), SHORT health settings
 * (STREAM_FAILOVER_AFTER=3 s; STREAM_QUARANTINE_RETRY an hour, so a quarantine stays).
 * In order, on one cluster:
 *  (a) a stream geo-blocked on exit=nl moves to an exit=br worker and stays there;
 *  (b) a dead upstream (fails everywhere) ends quarantined and unassigned after 3 workers;
 *  (c) a worker whose every stream fails is degraded and its streams move;
 *  (d) a rate-limited worker's streams move and it gets nothing new until the pause ends
 *      (then it takes streams again, like a member that joins: moves only towards it).
 * In every case: zero overlap (no sample with a stream held by two workers) and no OTHER
 * stream changes worker. Threshold rebalances are turned off (IMBALANCE_THRESHOLD=0.99,
 * MAX_STREAM_DIFFERENCE very large) so that any other move would be health's doing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimWorker, failureOf, parseLabels, type FailureRule } from "../../tools/sim-worker.js";
import { Cluster, waitFor } from "../helpers/cluster.js";
import { privateServers, type PrivatePostgres, type PrivateRedis } from "../helpers/private-servers.js";

const STREAMS = 40;
const TOKEN = "change-me-test-token";
const LABELS: Record<string, string> = { n1: "exit=nl", n2: "exit=nl", b1: "exit=br", b2: "exit=br" };
const catalog = Array.from({ length: STREAMS }, (_, i) => String(i + 1));
const HEALTH_ENV = {
  ADMIN_TOKEN: TOKEN,
  STREAM_FAILOVER_AFTER: "3",
  STREAM_QUARANTINE_AFTER: "3",
  STREAM_QUARANTINE_RETRY: "3600",
  STREAM_FAILURE_MEMORY: "7200",
  IMBALANCE_THRESHOLD: "0.99",
  MAX_STREAM_DIFFERENCE: "100000",
};

function note(line: string): void {
  // eslint-disable-next-line no-console
  console.log(`[stream-health] ${line}`);
}

describe("simulated worker failure rules", () => {
  it("fail a stream only where the worker's labels match, everywhere without `on`, every stream with *", () => {
    const rules: FailureRule[] = [
      { streams: ["7"], on: { exit: "nl" }, error: "403" },
      { streams: ["9"], error: "connection refused" },
    ];
    expect(failureOf("7", parseLabels("exit=nl,region=eu"), rules)).toBe("403");
    expect(failureOf("7", parseLabels("exit=br"), rules)).toBeUndefined();
    expect(failureOf("7", {}, rules)).toBeUndefined();
    expect(failureOf("9", parseLabels("exit=br"), rules)).toBe("connection refused");
    expect(failureOf("8", parseLabels("exit=nl"), rules)).toBeUndefined();
    expect(failureOf("123", {}, [{ streams: "*", error: "timeout" }])).toBe("timeout");
    expect(() => parseLabels("exit")).toThrow(/bad labels "exit": "exit" is not key=value/);
  });
});

describe("stream health", { timeout: 600_000 }, () => {
  let pg: PrivatePostgres;
  let redis: PrivateRedis;
  let cluster: Cluster;
  let stopServers: () => Promise<void>;
  const workers = new Map<string, SimWorker>();
  let rules: FailureRule[] = [];
  const special = new Set<string>(); // streams given a failure rule so far

  beforeAll(async () => {
    ({ pg, redis, stop: stopServers } = await privateServers(STREAMS));
    cluster = new Cluster({ databaseUrl: pg.url, redisUrl: redis.url, prefix: "health", env: HEALTH_ENV });
    await Promise.all(
      Object.entries(LABELS).map(async ([id, labels]) => {
        const a = await cluster.start(id, { capacity: 30, env: { LABELS: labels }, worker: false });
        const w = new SimWorker({ url: a.url, waitS: 5, reportEveryMs: 500, labels: parseLabels(labels) });
        a.worker = w;
        workers.set(id, w);
        w.start();
      }),
    );
    cluster.observer.start(catalog);
    await cluster.stable("the first assignment", 2500, 120_000);
  }, 180_000);

  afterAll(async () => {
    await cluster?.close();
    await stopServers?.();
  });

  /** The same rules on every worker (each applies them with its own labels). */
  function setRules(next: FailureRule[]): void {
    rules = next;
    for (const w of workers.values()) w.setFailures(rules);
  }

  const served = () => new Map(cluster.observer.served());
  const stream = async (id: string) => (await cluster.status("n1", `/streams/${id}`)) as { owner: string | null; state: string; health: string; failures: { instance_id: string }[]; recent_moves: { from: string | null; to: string | null; reason: string | null }[]; unassigned_reason: string | null };
  const instance = async (id: string) => ((await cluster.status("b1", "/instances")).instances as { instance_id: string; degraded?: boolean; degraded_reason?: string | null }[]).find((i) => i.instance_id === id);

  /** Streams (outside `except`) whose worker changed between two snapshots, each with the moves the agents recorded. */
  async function otherMoves(before: Map<string, string>, after: Map<string, string>, except: ReadonlySet<string>): Promise<string[]> {
    const moved = [...before].filter(([s, w]) => !except.has(s) && after.get(s) !== w);
    return Promise.all(
      moved.map(async ([s, w]) => {
        const why = (await stream(s)).recent_moves.slice(0, 3).map((m) => `${m.from ?? "-"}→${m.to ?? "-"} (${m.reason})`);
        return `${s}: ${w} → ${after.get(s) ?? "nobody"} [${why.join(", ")}]`;
      }),
    );
  }

  it("(a) a stream failing on exit=nl workers moves to an exit=br worker, and nothing else moves", async () => {
    const before = served();
    const geo = [...before].filter(([, w]) => w === "n1").map(([s]) => s).sort((a, b) => Number(a) - Number(b))[0]!;
    special.add(geo);
    setRules([...rules, { streams: [geo], on: { exit: "nl" }, error: "403 geo-blocked" }]);
    const t0 = performance.now();
    await waitFor(() => ["b1", "b2"].includes(cluster.observer.served().get(geo) ?? ""), 90_000, `stream ${geo} to reach an exit=br worker`);
    note(`(a) stream ${geo}: n1 → ${cluster.observer.served().get(geo)} after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await cluster.stable("calm after the geo move", 5000);
    const after = served();
    expect(["b1", "b2"]).toContain(after.get(geo));
    const s = await stream(geo);
    expect(s.owner).toBe(after.get(geo));
    expect(s.failures.map((f) => f.instance_id)).toContain("n1");
    expect(s.recent_moves.some((m) => m.reason === "failing")).toBe(true);
    expect(await otherMoves(before, after, new Set([geo]))).toEqual([]);
    expect(cluster.observer.overlaps).toEqual([]);
  });

  it("(b) a dead upstream ends quarantined and unassigned after failing on 3 workers", async () => {
    const before = served();
    const dead = [...before].filter(([s, w]) => w === "b1" && !special.has(s)).map(([s]) => s).sort((a, b) => Number(a) - Number(b))[0]!;
    special.add(dead);
    setRules([...rules, { streams: [dead], error: "connection refused" }]);
    const t0 = performance.now();
    await waitFor(async () => (await stream(dead)).health === "quarantined", 150_000, `stream ${dead} to be quarantined`, 250);
    note(`(b) stream ${dead} quarantined ${((performance.now() - t0) / 1000).toFixed(1)} s after its upstream died`);
    await waitFor(() => !cluster.observer.served().has(dead), 30_000, `stream ${dead} to be served by nobody`);
    await waitFor(async () => (await stream(dead)).owner === null, 30_000, `stream ${dead} to have no owner`, 250);
    const s = await stream(dead);
    expect(s.state).toBe("unassigned");
    expect(s.unassigned_reason).toBe("quarantined");
    expect(new Set(s.failures.map((f) => f.instance_id)).size).toBeGreaterThanOrEqual(3);
    // It stays off every worker (the retry is an hour away).
    await new Promise((r) => setTimeout(r, 5000));
    expect(cluster.observer.served().has(dead)).toBe(false);
    expect((await stream(dead)).owner).toBeNull();
    const after = served();
    expect(await otherMoves(before, after, new Set([dead]))).toEqual([]);
    cluster.observer.setCatalog(catalog.filter((c) => c !== dead)); // served by nobody, on purpose
    expect(cluster.observer.overlaps).toEqual([]);
  });

  it("(c) a worker whose every stream fails is degraded and its streams move; nothing else moves", async () => {
    await cluster.stable("settled", 3000);
    const before = served();
    const victims = new Set([...before].filter(([, w]) => w === "b2").map(([s]) => s));
    expect(victims.size).toBeGreaterThanOrEqual(3);
    workers.get("b2")!.setFailures([...rules, { streams: "*", error: "timeout" }]);
    const t0 = performance.now();
    await waitFor(() => workers.get("b2")!.serving.size === 0 && cluster.observer.unserved().filter((s) => victims.has(s)).length === 0, 90_000, "b2's streams to move to other workers");
    note(`(c) b2 (every capture fails): ${victims.size} streams moved in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const b2 = await instance("b2");
    expect(b2?.degraded).toBe(true);
    expect(b2?.degraded_reason).toBe("failures");
    await cluster.stable("calm after b2's streams moved", 5000);
    const after = served();
    for (const s of victims) expect(after.get(s), `stream ${s}`).not.toBe("b2");
    expect(await otherMoves(before, after, victims)).toEqual([]);
    expect(workers.get("b2")!.serving.size).toBe(0);
    expect(cluster.observer.overlaps).toEqual([]);
    // b2 stays broken; once its degraded spell ends (5 × STREAM_FAILOVER_AFTER) it would be
    // offered streams again to find out. It leaves the fleet here, so (d) sees only (d).
    const b2Agent = cluster.get("b2");
    await workers.get("b2")!.stop();
    workers.delete("b2");
    b2Agent.proc.kill("SIGTERM");
    await b2Agent.exited;
    cluster.agents.delete("b2");
  });

  it("(d) a rate-limited worker's streams move and it gets nothing new until the pause ends", async () => {
    await cluster.stable("settled", 3000);
    const before = served();
    const victims = new Set([...before].filter(([, w]) => w === "n2").map(([s]) => s));
    expect(victims.size).toBeGreaterThan(0);
    const pauseMs = 20_000;
    const until = Date.now() + pauseMs;
    workers.get("n2")!.rateLimit(until);
    await waitFor(() => workers.get("n2")!.serving.size === 0 && cluster.observer.unserved().filter((s) => victims.has(s)).length === 0, 60_000, "n2's streams to move");
    note(`(d) n2 rate-limited: ${victims.size} streams moved ${((pauseMs - (until - Date.now())) / 1000).toFixed(1)} s into the pause`);
    const n2 = await instance("n2");
    expect(n2?.degraded).toBe(true);
    expect(n2?.degraded_reason).toBe("rate-limited");
    // Nothing new while paused, and nothing else moves.
    while (Date.now() < until - 500) {
      expect(workers.get("n2")!.serving.size).toBe(0);
      await new Promise((r) => setTimeout(r, 250));
    }
    const paused = served();
    expect(await otherMoves(before, paused, victims)).toEqual([]);
    // Once the pause is over it is healthy again and takes streams like a member that
    // joins: streams only move TO it.
    await waitFor(async () => (await instance("n2"))?.degraded === false, 30_000, "n2 to be healthy once its pause is over", 250);
    await waitFor(() => workers.get("n2")!.serving.size > 0, 60_000, "n2 to get streams again after its pause");
    await cluster.stable("calm after n2's return", 5000);
    const back = served();
    note(`(d) after the pause n2 serves ${workers.get("n2")!.serving.size} streams again`);
    expect([...paused].filter(([s, w]) => back.get(s) !== w && back.get(s) !== "n2")).toEqual([]);
    expect(cluster.observer.overlaps).toEqual([]);
  });
});
