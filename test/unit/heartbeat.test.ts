/**
 * The heartbeat step (agent/heartbeat.ts) on the manual clock: when the worker's lease is
 * renewed, and when a freeze or a lapsed lease forces a resync.
 */
import { describe, expect, it } from "vitest";
import { HeartbeatLoop, renewsOnFailure, type HeartbeatReply } from "../../agent/heartbeat.js";
import { Serving } from "../../agent/serving.js";
import { ManualClock } from "../../shared/clock.js";
import { silentLogger } from "../../shared/logger.js";
import { Metrics } from "../../shared/metrics.js";
import type { Heartbeat } from "../../shared/types.js";

const LEASE = 3_000;
const REPLY: HeartbeatReply = { existed: true, version: 0, flag: undefined, incarnation: "i1", leader: undefined };

function harness(policy: "keep" | "stop" = "stop") {
  const clock = new ManualClock(10_000);
  const serving = new Serving(clock, LEASE, 5_000);
  let fail: Error | undefined;
  let connection = "ready";
  let resyncing = false;
  const resyncs: string[] = [];
  const loop = new HeartbeatLoop({
    clock, logger: silentLogger(), metrics: new Metrics({ instance: "t" }), serving, workerLeaseMs: LEASE, policy,
    send: async () => {
      await clock.sleep(0);
      if (fail) throw fail;
      return REPLY;
    },
    connection: () => connection,
    build: () => ({ held: [] }) as unknown as Heartbeat,
    resyncing: () => resyncing,
    requireResync: (_now, why) => {
      resyncing = true;
      resyncs.push(why);
      serving.expire();
    },
    onReply: () => {},
    onReleased: () => {},
  });
  const beat = async () => {
    const p = loop.beat();
    await clock.advance(0);
    await p;
  };
  return {
    clock, serving, loop, resyncs, beat,
    fail(e: Error | undefined, conn = "ready") { fail = e; connection = conn; },
    resynced() { resyncing = false; },
  };
}

describe("renewsOnFailure", () => {
  it("stop never renews on a failure; keep renews only while Redis is clearly down", () => {
    expect(renewsOnFailure("stop", "connect ECONNREFUSED", "reconnecting")).toBe(false);
    expect(renewsOnFailure("keep", "connect ECONNREFUSED", "reconnecting")).toBe(true);
    expect(renewsOnFailure("keep", "Command timed out", "ready")).toBe(false);
    expect(renewsOnFailure("keep", "Command timed out", "reconnecting")).toBe(true);
  });
});

describe("HeartbeatLoop", () => {
  it("renews the lease from a confirmed beat, timed from before it was sent", async () => {
    const h = harness();
    const sentAt = h.clock.now();
    await h.beat();
    expect(h.serving.leaseDeadline).toBe(sentAt + LEASE);
    expect(h.loop.healthy).toBe(true);
  });

  it("a failed beat does not renew under stop; the lease runs out and the next beat resyncs", async () => {
    const h = harness("stop");
    await h.beat();
    const deadline = h.serving.leaseDeadline;
    await h.clock.advance(1_000);
    h.fail(new Error("connect ECONNREFUSED 127.0.0.1:6379"), "reconnecting");
    await h.beat();
    expect(h.serving.leaseDeadline).toBe(deadline);
    expect(h.loop.healthy).toBe(false);
    await h.clock.advance(2_500);
    await h.beat();
    expect(h.resyncs).toEqual(["worker lease lapsed"]);
  });

  it("a gap between two attempts longer than the lease (a freeze) forces a resync", async () => {
    const h = harness("keep");
    await h.beat();
    await h.clock.advance(LEASE + 1);
    await h.beat();
    expect(h.resyncs[0]).toBe("heartbeat gap longer than the worker lease");
    // While resyncing, even a confirmed beat does not renew.
    expect(h.serving.leaseDeadline).toBe(0);
    h.resynced();
    await h.beat();
    expect(h.serving.leaseValid()).toBe(true);
  });
});
