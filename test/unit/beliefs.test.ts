import { describe, expect, it } from "vitest";
import { Beliefs } from "../../agent/beliefs.js";
import { ManualClock } from "../../shared/clock.js";
import type { Snapshot } from "../../shared/membership.js";
import type { OwnAssignment } from "../../shared/store.js";

const L = (id: string, ready = true) => ({ id, epoch: 3, ready });
const snap = (at: number, leader: ReturnType<typeof L> | undefined, flag?: { mode: "orchestrated" | "hashed"; version: number }): Snapshot =>
  ({ at, members: new Map(), leader, flag, incarnation: "i", viewVersion: 1, viewGrewAt: 0, channels: { redis: true, postgres: true } }) as unknown as Snapshot;

function setup() {
  const clock = new ManualClock(1000);
  let view: Snapshot | undefined;
  const b = new Beliefs({ clock, view: () => view, maxViewAgeMs: 3000, wholeViewLeaderlessMs: 4000 });
  return { clock, b, setView: (v: Snapshot | undefined) => (view = v) };
}

describe("an agent's beliefs about the cluster (agent/beliefs.ts)", () => {
  it("takes the leader from the newer of its heartbeat reply and the tracker's view", async () => {
    const { clock, b, setView } = setup();
    expect(b.leaderInfo).toBeUndefined();
    b.observeReply(L("a"), undefined);
    expect(b.leaderInfo?.id).toBe("a");
    setView(snap(1500, L("b")));
    expect(b.leaderInfo?.id).toBe("b");
    await clock.advance(1000);
    b.observeReply(undefined, undefined);
    expect(b.leaderInfo).toBeUndefined();
  });

  it("takes the newest flag version among its rows, the view and the reply", () => {
    const { b, setView } = setup();
    b.observeOwn({ mode: "orchestrated", modeVersion: 4 } as unknown as OwnAssignment, 900);
    expect(b.flag).toEqual({ mode: "orchestrated", version: 4 });
    setView(snap(1000, undefined, { mode: "hashed", version: 5 }));
    expect(b.flag).toEqual({ mode: "hashed", version: 5 });
    b.observeReply(undefined, { mode: "orchestrated", version: 6 });
    expect(b.flag).toEqual({ mode: "orchestrated", version: 6 });
    expect(b.ownLoadedAt).toBe(900);
  });

  it("reads the whole membership while leading, hashing, pinned to hashing, flagged hashed, or long without a ready leader", () => {
    const { b, setView } = setup();
    const follower = { leading: false, mode: "orchestrated" as const, useOrchestrator: true, lastLeaderSeenAt: 1000 - 4000 };
    expect(b.decides(follower)).toBe(true); // no leader in sight
    b.observeReply(L("a", false), undefined);
    expect(b.decides(follower)).toBe(true); // a leader that is not ready yet
    b.observeReply(L("a"), undefined);
    expect(b.decides(follower)).toBe(false);
    expect(b.decides({ ...follower, leading: true })).toBe(true);
    expect(b.decides({ ...follower, mode: "hashed" })).toBe(true);
    expect(b.decides({ ...follower, useOrchestrator: false })).toBe(true);
    setView(snap(500, L("a"), { mode: "hashed", version: 9 }));
    expect(b.decides(follower)).toBe(true);
  });

  it("without a ready leader, waits wholeViewLeaderlessMs from the last one seen before reading the whole membership", async () => {
    const { clock, b } = setup();
    const follower = { leading: false, mode: "orchestrated" as const, useOrchestrator: true, lastLeaderSeenAt: 1000 };
    expect(b.decides(follower)).toBe(false); // a leader change in progress: the leader alone
    b.observeReply(L("a", false), undefined);
    await clock.advance(3999);
    expect(b.decides(follower)).toBe(false);
    await clock.advance(1);
    expect(b.decides(follower)).toBe(true); // the fallback may come in a timeout and an interval
    b.observeReply(L("a"), undefined);
    expect(b.decides(follower)).toBe(false); // a ready leader again
    expect(b.decides({ ...follower, lastLeaderSeenAt: clock.now() })).toBe(false);
  });

  it("tries the lease only while no recent reply names a live leader", async () => {
    const { clock, b } = setup();
    expect(b.mayAcquire()).toBe(true);
    b.observeReply(L("a"), undefined);
    expect(b.mayAcquire()).toBe(false);
    await clock.advance(3000);
    expect(b.mayAcquire()).toBe(false);
    expect(b.acquireInMs()).toBe(1);
    await clock.advance(1);
    expect(b.mayAcquire()).toBe(true); // the reply is too old to vouch for a leader
    expect(b.acquireInMs()).toBe(0);
    b.observeReply(undefined, undefined);
    expect(b.mayAcquire()).toBe(true);
  });
});
