/**
 * A periodic membership read that another loop may just have made (shared/membership.ts
 * refreshWithin): a leader's tick reads at every tick, so the agent's own tracker loop
 * takes that view instead of reading again, but only when it is recent and of the kind
 * the agent needs now (a decider's whole view, or a follower's).
 */
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../shared/clock.js";
import { MembershipTracker } from "../../shared/membership.js";
import type { RawSnapshot } from "../../shared/redis-protocol.js";

function harness() {
  const clock = new ManualClock(10_000);
  let reads = 0;
  let deciding = true;
  const tracker = new MembershipTracker({
    clock,
    heartbeatTimeoutMs: 3_000,
    heartbeatWarningMs: 1_500,
    maxGapMs: 1_500,
    decider: () => deciding,
    protocol: {
      snapshot: async (): Promise<RawSnapshot> => {
        reads++;
        return { incarnation: "i1", leader: undefined, flag: undefined, members: [] };
      },
    },
  });
  return { clock, tracker, reads: () => reads, decide: (on: boolean) => (deciding = on) };
}

describe("a periodic read after another loop's", () => {
  it("takes a view read within the given time, and reads again once it is older", async () => {
    const { clock, tracker, reads } = harness();
    const first = await tracker.refresh();
    await clock.advance(300);
    expect(await tracker.refreshWithin(500)).toBe(first);
    expect(reads()).toBe(1);
    await clock.advance(200);
    expect(await tracker.refreshWithin(500)).not.toBe(first);
    expect(reads()).toBe(2);
  });

  it("reads again when the agent stopped or started deciding since that view", async () => {
    const { clock, tracker, reads, decide } = harness();
    const whole = await tracker.refresh();
    decide(false);
    await clock.advance(100);
    // A follower's read (its own heartbeat's reply), not the decider's view just taken.
    tracker.observeReply({ incarnation: "i1", leader: undefined, flag: undefined, leaderMark: undefined }, clock.now());
    const follower = await tracker.refreshWithin(500);
    expect(follower).not.toBe(whole);
    expect(follower.whole).toBe(false);
    decide(true);
    await clock.advance(100);
    const again = await tracker.refreshWithin(500);
    expect(again.whole).toBe(true);
    expect(reads()).toBe(2);
  });
});
