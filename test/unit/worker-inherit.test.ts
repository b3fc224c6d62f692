/**
 * A new agent process beside a worker that outlived the previous one (agent/worker-link.ts
 * inherit), on the manual clock: the previous process's rows count as held for at least a
 * full WORKER_LEASE, even when WORKER_TIMEOUT is shorter, since a lease granted just before
 * the previous process died can run that long.
 */
import { describe, expect, it } from "vitest";
import { WorkerLink } from "../../agent/worker-link.js";
import { ManualClock } from "../../shared/clock.js";
import { silentLogger } from "../../shared/logger.js";
import { Metrics } from "../../shared/metrics.js";

function link(workerLeaseMs: number, workerTimeoutMs: number) {
  const clock = new ManualClock(50_000);
  const w = new WorkerLink({
    clock, logger: silentLogger(), metrics: new Metrics({ instance: "t" }), agentId: "a", maxStreams: 10,
    workerLeaseMs, workerTimeoutMs, longPollCapMs: 1_000,
    onHeldShrank: () => {}, onReleased: () => {}, declared: { save: async () => {} },
  });
  return { clock, w };
}

describe("rows inherited from the previous process", () => {
  it("stay held for a full WORKER_LEASE when WORKER_TIMEOUT is shorter", async () => {
    const { clock, w } = link(3_000, 1_000);
    w.inherit(["7", "9"], null);
    await clock.advance(2_500);
    expect(w.serving.held()).toEqual(["7", "9"]);
    await clock.advance(700);
    expect(w.serving.held()).toEqual([]);
  });

  it("stay held for WORKER_TIMEOUT when it is the longer (an older-API worker has no lease)", async () => {
    const { clock, w } = link(1_800, 5_000);
    w.inherit(["7"], null);
    await clock.advance(4_500);
    expect(w.serving.held()).toEqual(["7"]);
    await clock.advance(700);
    expect(w.serving.held()).toEqual([]);
  });
});
