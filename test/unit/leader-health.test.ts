/**
 * The leader's stream-health bookkeeping (leader/health.ts) on the manual clock: the
 * failover budget refills at STREAM_FAILOVER_BUDGET per minute, and figures that cannot
 * be read never fail the tick (regression: a failed health read failed the whole tick,
 * which counts towards the leader stepping aside); the figures are computed beside the
 * ticks (one at a time), counting each stream as healthOf says with its holder, else its
 * row's owner.
 */
import { describe, expect, it } from "vitest";
import { LeaderHealth } from "../../leader/health.js";
import { ManualClock } from "../../shared/clock.js";
import { loadConfig } from "../../shared/config.js";
import { silentLogger } from "../../shared/logger.js";
import { Metrics } from "../../shared/metrics.js";
import type { Plan } from "../../shared/placement/plan.js";
import type { HealthState } from "../../shared/stream-health-store.js";
import type { MemberView, Snapshot } from "../../shared/membership.js";
import type { Heartbeat, Stream } from "../../shared/types.js";

const settings = loadConfig({ STREAM_FAILOVER_BUDGET: "6" }).streamHealth;

function setup(readStates: () => Promise<Map<string, HealthState>>) {
  const clock = new ManualClock();
  const metrics = new Metrics({ instance: "t" });
  const samples: number[][] = [];
  const h = new LeaderHealth({
    clock,
    logger: silentLogger(),
    metrics,
    settings,
    store: { applyHealth: async () => {}, readStates, saveSample: async (...x) => void samples.push(x), pruneFailures: async () => 0 },
    fence: { checkEpoch: async () => {} },
    figuresEveryMs: 10_000,
  });
  return { clock, h, metrics, samples };
}

function member(id: string, held: string[], status: MemberView["status"] = "alive"): MemberView {
  const hb = { id, held } as unknown as Heartbeat;
  return { id, hb, present: true, status, silentMs: 0, firstSeenAt: 0 };
}

describe("leader health", () => {
  it("the budget is spent by plans and refills at the per-minute rate, never above it", async () => {
    const { clock, h } = setup(async () => new Map());
    expect(h.budget()).toBe(6);
    await h.applied(1, { ops: [], healthOps: [], healthSpent: 6 } as unknown as Plan);
    expect(h.budget()).toBe(0);
    await clock.advance(10_000);
    expect(h.budget()).toBe(1);
    await clock.advance(10 * 60_000);
    expect(h.budget()).toBe(6);
  });

  it("figures that cannot be read do not fail the tick", async () => {
    const { h } = setup(async () => {
      throw new Error("connection terminated");
    });
    h.figures([], { members: new Map() } as never, new Map());
    await expect(h.idle()).resolves.toBeUndefined();
  });

  it("figures are computed beside the tick, one at a time, as healthOf counts them", async () => {
    let arrive!: (m: Map<string, HealthState>) => void;
    let reads = 0;
    const { clock, h, metrics, samples } = setup(() => {
      reads++;
      return new Promise((r) => (arrive = r));
    });
    const catalog: Stream[] = ["1", "2", "3", "4", "5"].map((id) => ({ id, url: "u", name: id, metadata: {} }));
    // 1 held by a (ok), 2 held by a but failing on b (ok where it is), 3 failing on its row's owner b,
    // 4 quarantined, 5 never heard; d is dead: what it lists counts for nothing.
    const snap = { members: new Map([["a", member("a", ["1", "2"])], ["d", member("d", ["3"], "dead")]]) } as unknown as Snapshot;
    const rows = new Map([["3", { owner: "b", state: "active" }]]);
    h.figures(catalog, snap, rows); // returns at once: the tick goes on
    await clock.advance(20_000);
    h.figures(catalog, snap, rows); // still computing: nothing more starts
    expect(reads).toBe(1);
    const state = (o: Partial<HealthState>): HealthState => ({ failingOn: null, quarantinedAt: null, lastOkAt: "t", ...o });
    arrive(new Map([["1", state({})], ["2", state({ failingOn: "b" })], ["3", state({ failingOn: "b" })], ["4", state({ quarantinedAt: "t" })]]));
    await h.idle();
    const values = Object.fromEntries((await metrics.streamsHealth.get()).values.map((v) => [v.labels.health, v.value]));
    expect(values).toEqual({ ok: 2, failing: 1, quarantined: 1, unknown: 1 });
    expect(samples).toEqual([[5, 2, 2]]);
  });
});
