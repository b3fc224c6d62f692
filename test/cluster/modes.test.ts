/**
 * Modes under real processes: the hashing fallback when no leader can act, the cluster
 * flag flipped at run time, and a mixed fleet (one agent with USE_ORCHESTRATOR=false).
 * Zero overlap is asserted strictly in every step.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, FAST_TIMINGS, waitFor } from "../helpers/cluster.js";
import { privateServers, type PrivatePostgres, type PrivateRedis } from "../helpers/private-servers.js";

const STREAMS = 60;
const TOKEN = "change-me-test-token";
const IDS = ["m1", "m2", "m3"];
const catalog = Array.from({ length: STREAMS }, (_, i) => String(i + 1));
const TIMEOUT_MS = Number(FAST_TIMINGS.HEARTBEAT_TIMEOUT) * 1000;
const GRACE_MS = Number(FAST_TIMINGS.FALLBACK_GRACE) * 1000;

function note(line: string): void {
  // eslint-disable-next-line no-console
  console.log(`[modes] ${line}`);
}

describe("modes", { timeout: 120_000 }, () => {
  let pg: PrivatePostgres;
  let redis: PrivateRedis;
  let cluster: Cluster;
  let stopServers: () => Promise<void>;

  beforeAll(async () => {
    ({ pg, redis, stop: stopServers } = await privateServers(STREAMS));
    cluster = new Cluster({ databaseUrl: pg.url, redisUrl: redis.url, prefix: "modes", env: { ADMIN_TOKEN: TOKEN, SHUTDOWN_DRAIN: "true" } });
    await Promise.all(IDS.map((id, i) => cluster.start(id, { capacity: 30 + 10 * i })));
    cluster.observer.start(catalog);
    await stable("the first assignment");
  }, 120_000);

  afterAll(async () => {
    await cluster?.close();
    await stopServers?.();
  });

  const stable = (what: string, quietMs = 2500) => cluster.stable(what, quietMs);

  async function modes(ids = IDS): Promise<string[]> {
    return Promise.all(ids.map(async (id) => String((await cluster.status(id)).mode)));
  }

  async function setMode(mode: "hashed" | "orchestrated"): Promise<void> {
    const res = await fetch(`${cluster.get(IDS[0]!).url}/mode`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ mode }),
    });
    expect(res.status).toBe(200);
  }

  function moved(before: Map<string, string>, after: Map<string, string>): number {
    return [...before].filter(([s, w]) => after.get(s) !== w).length;
  }

  it("PUT /mode hashed switches the whole fleet at run time, and back, with no overlap", async () => {
    const before = new Map(cluster.observer.served());
    cluster.observer.resetGaps();
    await setMode("hashed");
    const t = await waitFor(async () => (await modes()).every((m) => m === "hashed"), 30_000, "every agent to hash");
    await stable("a stable hashed assignment");
    const hashed = new Map(cluster.observer.served());
    note(`flag → hashed: all agents hashing after ${(t / 1000).toFixed(2)} s; ${moved(before, hashed)} of ${STREAMS} streams moved (${((100 * moved(before, hashed)) / STREAMS).toFixed(1)} %); longest unserved ${(cluster.observer.maxGapMs() / 1000).toFixed(2)} s`);
    expect(cluster.observer.overlaps).toEqual([]);
    cluster.observer.resetGaps();
    await setMode("orchestrated");
    await waitFor(async () => (await modes()).every((m) => m === "orchestrated"), 30_000, "every agent to follow the leader again");
    await stable("a stable orchestrated assignment");
    const back = new Map(cluster.observer.served());
    note(`flag → orchestrated: ${moved(hashed, back)} streams moved back; longest unserved ${(cluster.observer.maxGapMs() / 1000).toFixed(2)} s`);
    expect(cluster.observer.overlaps).toEqual([]);
  });

  it("a mixed fleet (one agent with USE_ORCHESTRATOR=false) neither double-serves nor orphans", async () => {
    await cluster.start("h1", { capacity: 30, env: { USE_ORCHESTRATOR: "false" } });
    await waitFor(() => cluster.get("h1").worker!.serving.size > 0, 30_000, "the hashing agent to take its share");
    await stable("a stable mixed fleet");
    expect((await cluster.status("h1")).mode).toBe("hashed");
    expect(cluster.observer.unserved()).toEqual([]);
    note(`mixed fleet: hashing agent serves ${cluster.get("h1").worker!.serving.size} of ${STREAMS}`);
    // It leaves (SIGTERM drains): its streams go back to the orchestrated agents.
    const h = cluster.get("h1");
    h.proc.kill("SIGTERM");
    await h.exited;
    await h.worker!.stop();
    cluster.agents.delete("h1");
    await stable("the orchestrated agents to take the hashing agent's streams");
    expect(cluster.observer.overlaps).toEqual([]);
  });

  it("with no leader able to act (PostgreSQL down, leader killed) the fleet falls back to hashing, then follows a leader again", async () => {
    await stable("settled");
    let leader: string | null = null;
    await waitFor(async () => (leader = await cluster.leader()) !== null, 30_000, "a leader");
    const victim = leader!;
    const survivors = IDS.filter((id) => id !== victim);
    await pg.down();
    cluster.observer.resetGaps();
    await cluster.kill9(victim);
    const t = await waitFor(async () => (await modes(survivors)).every((m) => m === "hashed") && cluster.observer.unserved().length === 0 && cluster.get(victim).worker!.serving.size === 0, 60_000, "the survivors to hash and serve everything");
    note(`no leader (PostgreSQL down + leader killed): everything served by hashing ${(t / 1000).toFixed(2)} s after the kill; longest unserved ${(cluster.observer.maxGapMs() / 1000).toFixed(2)} s`);
    expect(t).toBeLessThan(GRACE_MS + TIMEOUT_MS + 2000 + 5000);
    expect(cluster.observer.overlaps).toEqual([]);
    await pg.up();
    await waitFor(async () => (await modes(survivors)).every((m) => m === "orchestrated"), 60_000, "the survivors to follow the new leader");
    await cluster.restart(victim);
    await stable("a stable assignment after recovery");
    expect(cluster.observer.overlaps).toEqual([]);
  });
});
