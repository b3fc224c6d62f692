/**
 * The leader's stream-health bookkeeping (leader/health.ts) on the manual clock: the
 * failover budget refills at STREAM_FAILOVER_BUDGET per minute, and figures that cannot
 * be read never fail the tick (regression: a failed health read failed the whole tick,
 * which counts towards the leader stepping aside).
 */
import { describe, expect, it } from "vitest";
import { LeaderHealth } from "../../leader/health.js";
import { ManualClock } from "../../shared/clock.js";
import { loadConfig } from "../../shared/config.js";
import { silentLogger } from "../../shared/logger.js";
import { Metrics } from "../../shared/metrics.js";
import type { Plan } from "../../shared/placement/plan.js";
import type { HealthRecord } from "../../shared/stream-health-store.js";

const settings = loadConfig({ STREAM_FAILOVER_BUDGET: "6" }).streamHealth;

function setup(readAll: () => Promise<Map<string, HealthRecord>>) {
  const clock = new ManualClock();
  const h = new LeaderHealth({
    clock,
    logger: silentLogger(),
    metrics: new Metrics({ instance: "t" }),
    settings,
    store: { applyHealth: async () => {}, readAll, saveSample: async () => {}, pruneFailures: async () => 0 },
    fence: { checkEpoch: async () => {} },
    figuresEveryMs: 10_000,
  });
  return { clock, h };
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
    await expect(h.figures([], { members: new Map() } as never, new Map())).resolves.toBeUndefined();
  });
});
