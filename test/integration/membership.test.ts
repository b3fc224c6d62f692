/**
 * The membership tracker against a real Redis, on a manual clock: a member is dead only
 * after this tracker watched it silent for HEARTBEAT_TIMEOUT; a Redis that lost its data
 * (new incarnation) is not a mass death, not even for members that were dead before.
 */
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../shared/clock.js";
import { Keys } from "../../shared/keys.js";
import { MembershipTracker } from "../../shared/membership.js";
import { RedisProtocol } from "../../shared/redis-protocol.js";
import type { Heartbeat } from "../../shared/types.js";
import { clearPrefix, connectTestRedis, uniqueName } from "../helpers/services.js";

const TIMEOUT = 5000;

describe("MembershipTracker", () => {
  let redis: Redis;
  const keys = new Keys(uniqueName("members"));
  let seq = 0;
  let protocol: RedisProtocol;

  const beat = (id: string) => {
    const hb: Partial<Heartbeat> = { id, seq: ++seq, session: `s-${id}`, ttlMs: TIMEOUT, capacity: 10, held: ["1"], worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" } };
    return protocol.heartbeat(hb as Heartbeat, TIMEOUT);
  };

  beforeAll(async () => {
    redis = await connectTestRedis();
    protocol = new RedisProtocol(redis, keys);
  });
  afterAll(async () => {
    await clearPrefix(redis, keys.prefix);
    redis.disconnect();
  });

  it("declares a silent member dead after HEARTBEAT_TIMEOUT, and not after a Redis data loss", async () => {
    const clock = new ManualClock();
    const tracker = new MembershipTracker({ protocol, clock, heartbeatTimeoutMs: TIMEOUT, heartbeatWarningMs: 2500, maxGapMs: 60_000 });
    await beat("a");
    await beat("b");
    await tracker.refresh();
    // "b" goes silent; "a" keeps beating.
    for (let i = 0; i < 6; i++) {
      await clock.advance(1000);
      await beat("a");
      await tracker.refresh();
    }
    let snap = await tracker.refresh();
    expect(snap.members.get("a")!.status).toBe("alive");
    expect(snap.members.get("b")!.status).toBe("dead");

    // Redis loses everything (a restart without persistence). Nobody has beaten since.
    await clearPrefix(redis, keys.prefix);
    await beat("a"); // "a" is back first; "b" may be alive too, we cannot know yet
    await clock.advance(100);
    snap = await tracker.refresh();
    expect(snap.members.get("a")!.status).toBe("alive");
    expect(snap.members.get("b")!.status).not.toBe("dead");
    expect(snap.members.get("b")!.hb?.held).toEqual(["1"]); // its last report still counts
    await clock.advance(TIMEOUT);
    await beat("a");
    snap = await tracker.refresh();
    expect(snap.members.get("b")!.status).toBe("dead");
  });
});
