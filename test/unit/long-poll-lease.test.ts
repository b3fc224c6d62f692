/**
 * The worker's long-poll against its lease (agent/worker-link.ts, agent/serving.ts
 * longPollMs), on the manual clock. A v1 worker dates its lease from when it SENT the
 * request that was answered, and the answer carries what is left of the lease when it is
 * sent: every millisecond waited comes off the worker's lease. The long-poll must end
 * early enough that the worker still holds a lease when its NEXT answer comes, also when
 * the heartbeats renewing the agent's lease come late (a loaded host), or the worker
 * stops everything for a moment although nothing was lost.
 */
import { describe, expect, it } from "vitest";
import { WorkerLink } from "../../agent/worker-link.js";
import { ManualClock } from "../../shared/clock.js";
import { silentLogger } from "../../shared/logger.js";
import { Metrics } from "../../shared/metrics.js";
import type { Offer } from "../../agent/serving.js";

const LEASE = 3_000;
const CAP = 1_000; // shared/timings.ts: a third of WORKER_LEASE

function link() {
  const clock = new ManualClock(50_000);
  const w = new WorkerLink({
    clock, logger: silentLogger(), metrics: new Metrics({ instance: "t" }), agentId: "a", maxStreams: 10,
    workerLeaseMs: LEASE, workerTimeoutMs: 10_000, longPollCapMs: CAP,
    onHeldShrank: () => {}, onReleased: () => {}, declared: { save: async () => {} },
  });
  w.serving.setListed([{ id: "1", url: "http://x.invalid/1", name: "1", metadata: {} }]);
  return { clock, w };
}

const flush = () => new Promise((r) => setImmediate(r));

describe("the long-poll and the worker's lease", () => {
  it("answers a request that arrives with two thirds of the lease left early enough to leave the worker as long as it waited", async () => {
    const { clock, w } = link();
    w.serving.renew(clock.now());
    const version = w.offerNow().version;
    await clock.advance(1_000); // the next heartbeat is late: 2 s of the lease left
    const sentAt = clock.now();
    let answer: { offer: Offer; at: number } | undefined;
    void w.assignment({ api: "v1", version, waitMs: 10_000 }).then((offer) => (answer = { offer, at: clock.now() }));
    for (let i = 0; i < 200 && !answer; i++) {
      await clock.advance(10);
      await flush();
    }
    expect(answer).toBeDefined();
    const waited = answer!.at - sentAt;
    const workerLeft = sentAt + answer!.offer.leaseMs - answer!.at;
    expect(answer!.offer.streams.length).toBe(1);
    expect(workerLeft).toBeGreaterThanOrEqual(waited);
  });

  it("keeps a continuously polling worker serving while heartbeats are late (every 1.2 s, confirmed after 200 ms)", async () => {
    const { clock, w } = link();
    const start = clock.now();
    w.serving.renew(start);
    let version = w.offerNow().version;
    let workerDeadline = start + LEASE;
    let pending: Promise<void> | undefined;
    let answered: { offer: Offer; sentAt: number; at: number } | undefined;
    const renewals: { at: number; sentAt: number }[] = [];
    let gaps = 0;
    for (let t = 0; t < 30_000; t += 10) {
      const now = clock.now();
      if (t % 1_200 === 0) renewals.push({ at: now + 200, sentAt: now });
      while (renewals.length > 0 && renewals[0]!.at <= now) w.serving.renew(renewals.shift()!.sentAt);
      if (!pending) {
        const sentAt = now;
        pending = w.assignment({ api: "v1", version, waitMs: 10_000 }).then((offer) => {
          answered = { offer, sentAt, at: clock.now() };
        });
      }
      await clock.advance(10);
      await flush();
      if (answered) {
        if (answered.at >= workerDeadline) gaps++; // the worker had stopped before this answer came
        workerDeadline = answered.sentAt + answered.offer.leaseMs;
        version = answered.offer.version;
        answered = undefined;
        pending = undefined;
      }
    }
    expect(gaps).toBe(0);
  });

  it("waits the whole cap while no lease runs (nothing is served; a new offer ends the wait)", async () => {
    const { clock, w } = link();
    const version = w.offerNow().version;
    const sentAt = clock.now();
    let at: number | undefined;
    void w.assignment({ api: "v1", version, waitMs: 10_000 }).then(() => (at = clock.now()));
    for (let i = 0; i < 200 && at === undefined; i++) {
      await clock.advance(10);
      await flush();
    }
    expect(at! - sentAt).toBe(CAP);
  });
});
