/**
 * The elector (client-go shape) with a fake lease and a manual clock.
 */
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../shared/clock.js";
import { silentLogger } from "../../shared/logger.js";
import { Elector } from "../../leader/elector.js";
import type { Lease } from "../../leader/lease.js";

/** One shared "Redis" key with expiry on the manual clock. */
class FakeStore {
  holder: string | undefined;
  expiresAt = 0;
  down = false;
  constructor(readonly clock: ManualClock) {}
  lease(id: string): Lease & { calls: number } {
    const store = this;
    return {
      calls: 0,
      token: id,
      async tryAcquire(ttl) {
        this.calls++;
        if (store.down) return false;
        if (store.holder && store.clock.now() < store.expiresAt) return false;
        store.holder = id;
        store.expiresAt = store.clock.now() + ttl;
        return true;
      },
      async tryExtend(ttl) {
        this.calls++;
        if (store.down || store.holder !== id || store.clock.now() >= store.expiresAt) return false;
        store.expiresAt = store.clock.now() + ttl;
        return true;
      },
      async release() {
        if (store.holder === id) store.holder = undefined;
      },
    };
  }
}

function elector(clock: ManualClock, lease: Lease, id: string, log: string[]) {
  return new Elector({
    id,
    lease,
    clock,
    logger: silentLogger(),
    ttlMs: 5000,
    renewIntervalMs: 1000,
    retryIntervalMs: 500,
    onStartedLeading: (signal) => {
      log.push(`${id}+`);
      signal.addEventListener("abort", () => log.push(`${id}-`));
    },
  });
}

const flush = () => new Promise((r) => setImmediate(r));

describe("Elector", () => {
  it("rejects a renew interval that leaves less than two renewals per TTL", () => {
    const clock = new ManualClock();
    const store = new FakeStore(clock);
    expect(() => new Elector({ id: "a", lease: store.lease("a"), clock, logger: silentLogger(), ttlMs: 1000, renewIntervalMs: 600, retryIntervalMs: 100, onStartedLeading: () => {} })).toThrow(/at most half/);
  });

  it("one leader at a time; the other takes over only after the lease expires", async () => {
    const clock = new ManualClock();
    const store = new FakeStore(clock);
    const log: string[] = [];
    const a = elector(clock, store.lease("a"), "a", log);
    const b = elector(clock, store.lease("b"), "b", log);
    a.start();
    await flush();
    b.start();
    await flush();
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    for (let i = 0; i < 20; i++) await clock.advance(500);
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    // "a" loses Redis: it must stop acting before its lease can have expired.
    store.down = true;
    const lostAt = clock.now();
    let stoppedAt: number | undefined;
    for (let i = 0; i < 60 && stoppedAt === undefined; i++) {
      await clock.advance(100);
      if (!a.isLeader()) stoppedAt = clock.now();
    }
    expect(stoppedAt).toBeDefined();
    expect(stoppedAt! - lostAt).toBeLessThan(5000);
    store.down = false;
    for (let i = 0; i < 20; i++) await clock.advance(500);
    expect(b.isLeader() || a.isLeader()).toBe(true);
    expect(a.isLeader() && b.isLeader()).toBe(false);
    await a.close();
    await b.close();
    expect(log[0]).toBe("a+");
    expect(log).toContain("a-");
  });

  it("a renewal that fails once is retried: one slow Redis answer does not cost the leadership", async () => {
    const clock = new ManualClock();
    const store = new FakeStore(clock);
    const log: string[] = [];
    const a = elector(clock, store.lease("a"), "a", log);
    const b = elector(clock, store.lease("b"), "b", log);
    a.start();
    await flush();
    b.start();
    await clock.advance(1000);
    store.down = true; // one renewal attempt fails (b cannot acquire either)
    await clock.advance(1000);
    store.down = false;
    for (let i = 0; i < 10; i++) await clock.advance(500);
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    expect(log).toEqual(["a+"]);
    await a.close();
    await b.close();
  });

  it("isLeader() turns false by our own clock even if the renewal never answers", async () => {
    const clock = new ManualClock();
    let hang = false;
    const lease: Lease = {
      token: "x",
      tryAcquire: async () => true,
      tryExtend: () => (hang ? new Promise<boolean>(() => {}) : Promise.resolve(true)),
      release: async () => {},
    };
    const log: string[] = [];
    const e = elector(clock, lease, "x", log);
    e.start();
    await flush();
    expect(e.isLeader()).toBe(true);
    hang = true;
    await clock.advance(1000);
    await clock.advance(3900);
    expect(e.isLeader()).toBe(false);
    expect(e.currentState).toBe("follower"); // the watchdog stepped down on its own
    expect(log).toEqual(["x+", "x-"]);
  });

  it("resign() releases the lease so another agent can lead at once", async () => {
    const clock = new ManualClock();
    const store = new FakeStore(clock);
    const log: string[] = [];
    const a = elector(clock, store.lease("a"), "a", log);
    const b = elector(clock, store.lease("b"), "b", log);
    a.start();
    await flush();
    b.start();
    await a.resign();
    await a.close();
    await clock.advance(500);
    await flush();
    expect(b.isLeader()).toBe(true);
    await b.close();
  });

  it("a follower makes no attempt at all while a live leader is named, and tries at once when poked with the news that none is", async () => {
    const clock = new ManualClock();
    const store = new FakeStore(clock);
    store.holder = "L";
    store.expiresAt = Number.MAX_SAFE_INTEGER;
    let leaderNamed = true;
    let asked = 0;
    const lease = store.lease("b");
    const b = new Elector({
      id: "b", lease, clock, logger: silentLogger(), ttlMs: 5000, renewIntervalMs: 1000, retryIntervalMs: 500,
      acquireInMs: () => (asked++, leaderNamed ? 3000 : 0), onStartedLeading: () => {},
    });
    b.start();
    await flush();
    for (let i = 0; i < 40; i++) await clock.advance(500); // 20 s, four TTLs
    expect(lease.calls).toBe(0);
    // No timer of its own: it looked again only when the named leader's reply could have aged out.
    expect(asked).toBeLessThanOrEqual(1 + 20_000 / 3000);
    // The leader is gone and no longer named: b tries as soon as it is told, not at a timer.
    store.holder = undefined;
    leaderNamed = false;
    b.poke();
    await flush();
    expect(b.isLeader()).toBe(true);
    await b.close();
  });

  it("a follower whose reply naming a leader grows too old tries when it does, without being poked", async () => {
    const clock = new ManualClock();
    const store = new FakeStore(clock);
    const lease = store.lease("b");
    const seenUntil = clock.now() + 3000;
    const b = new Elector({
      id: "b", lease, clock, logger: silentLogger(), ttlMs: 5000, renewIntervalMs: 1000, retryIntervalMs: 500,
      acquireInMs: () => Math.max(0, seenUntil - clock.now()), onStartedLeading: () => {},
    });
    b.start();
    await flush();
    await clock.advance(2900);
    expect(lease.calls).toBe(0);
    await clock.advance(100);
    await flush();
    expect(b.isLeader()).toBe(true);
    await b.close();
  });

  it("a follower with no leader named tries at every retry interval", async () => {
    const clock = new ManualClock();
    const store = new FakeStore(clock);
    store.holder = "L";
    store.expiresAt = Number.MAX_SAFE_INTEGER;
    const lease = store.lease("b");
    const b = new Elector({ id: "b", lease, clock, logger: silentLogger(), ttlMs: 5000, renewIntervalMs: 1000, retryIntervalMs: 500, acquireInMs: () => 0, onStartedLeading: () => {} });
    b.start();
    await flush();
    for (let i = 0; i < 10; i++) await clock.advance(500);
    expect(lease.calls).toBeGreaterThanOrEqual(10);
    await b.close();
  });
});
