/**
 * The leader's flag mirror (leader/publishing.ts mode()): written at once when the flag
 * changes, otherwise at most every leaderInfoPublishMs (each tick asks), and at once
 * again in the next term.
 */
import { describe, expect, it } from "vitest";
import { LeaderPublisher } from "../../leader/publishing.js";
import { ManualClock } from "../../shared/clock.js";
import { loadConfig } from "../../shared/config.js";
import type { ClusterFlag } from "../../shared/membership.js";

describe("the leader's flag mirror", () => {
  it("mirrors a change at once and an unchanged flag at most every leaderInfoPublishMs", async () => {
    const clock = new ManualClock();
    const config = loadConfig({});
    const every = config.timings.leaderInfoPublishMs;
    const written: string[] = [];
    const publisher = new LeaderPublisher({
      id: "me",
      clock,
      config,
      protocol: {
        publishMode: async (f: ClusterFlag) => {
          written.push(`${f.mode}/${f.version}@${clock.now() - 1000}`);
          return true;
        },
        clearLeader: async () => true,
      } as never,
      isLeader: () => true,
      leaseToken: () => "t",
      epoch: () => 1,
    });
    const orchestrated: ClusterFlag = { mode: "orchestrated", version: 3 };
    const hashed: ClusterFlag = { mode: "hashed", version: 4 };
    // Ticks every half interval, as the leader's.
    for (let t = 0; t < 2 * every; t += every / 2) {
      await publisher.mode(orchestrated);
      await clock.advance(every / 2);
    }
    expect(written).toEqual([`orchestrated/3@0`, `orchestrated/3@${every}`]);
    await publisher.mode(hashed);
    await publisher.mode(hashed);
    expect(written.at(-1)).toBe(`hashed/4@${2 * every}`);
    expect(written).toHaveLength(3);
    // A new term (the last one cleared what it published) mirrors at once.
    await publisher.clear();
    await publisher.mode(hashed);
    expect(written).toHaveLength(4);
  });
});
