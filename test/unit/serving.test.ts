/**
 * The worker half of the safety model (agent/serving.ts), on a manual clock.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ManualClock } from "../../shared/clock.js";
import type { Stream } from "../../shared/types.js";
import { Serving } from "../../agent/serving.js";

const s = (id: string): Stream => ({ id, url: `http://x.invalid/${id}`, name: id, metadata: {} });
const LEASE = 3000;

function setup() {
  const clock = new ManualClock();
  const serving = new Serving(clock, LEASE, 5000);
  return { clock, serving };
}

describe("the worker lease", () => {
  it("offers nothing before the first confirmed heartbeat", () => {
    const { serving } = setup();
    serving.setListed([s("1")]);
    const o = serving.fetch();
    expect(o.streams).toEqual([]);
    expect(o.leaseMs).toBe(0);
    expect(serving.held()).toEqual([]);
  });

  it("lease_ms counts from the heartbeat's send time, not from the request", async () => {
    const { clock, serving } = setup();
    serving.setListed([s("1")]);
    const sentAt = clock.now();
    await clock.advance(400); // the heartbeat's round trip
    serving.renew(sentAt);
    await clock.advance(1000); // a request arrives later
    expect(serving.fetch().leaseMs).toBe(LEASE - 1400);
  });

  it("withdraws everything once the lease has run out", async () => {
    const { clock, serving } = setup();
    serving.setListed([s("1"), s("2")]);
    serving.renew(clock.now());
    expect(serving.fetch().streams.length).toBe(2);
    await clock.advance(LEASE);
    const o = serving.fetch();
    expect(o.streams).toEqual([]);
    expect(o.leaseMs).toBe(0);
  });

  it("expire() forgets the lease until the next renewal", () => {
    const { clock, serving } = setup();
    serving.setListed([s("1")]);
    serving.renew(clock.now());
    serving.expire();
    expect(serving.leaseValid()).toBe(false);
    expect(serving.leaseDeadline).toBe(0);
  });
});

describe("the held set (what the worker may be processing)", () => {
  it("holds an offered stream until the worker confirms a newer version without it", async () => {
    const { clock, serving } = setup();
    serving.renew(clock.now());
    serving.setListed([s("1"), s("2")]);
    const v1 = serving.fetch().version;
    serving.setListed([s("1")]); // the leader revoked 2
    expect(serving.held()).toEqual(["1", "2"]); // the worker has not seen it yet
    const o2 = serving.fetch(v1); // the answer to a long-poll: version 2, without "2"
    expect(o2.streams.map((x) => x.id)).toEqual(["1"]);
    expect(serving.held()).toEqual(["1", "2"]); // the answer may not have arrived
    serving.fetch(o2.version); // the worker asks again, proving it applied version 2
    expect(serving.held()).toEqual(["1"]);
  });

  it("ignores versions it never offered", () => {
    const { clock, serving } = setup();
    serving.renew(clock.now());
    serving.setListed([s("1")]);
    serving.fetch();
    serving.setListed([]);
    serving.fetch(123);
    expect(serving.held()).toEqual(["1"]);
  });

  it("stops counting an offer once its lease is over (plus a small margin)", async () => {
    const { clock, serving } = setup();
    serving.renew(clock.now());
    serving.setListed([s("1")]);
    serving.fetch();
    await clock.advance(LEASE + 50);
    expect(serving.held()).toEqual(["1"]);
    await clock.advance(100);
    expect(serving.held()).toEqual([]);
  });

  it("a legacy worker holds a dropped stream until its next-but-one call (it stops late)", () => {
    const { clock, serving } = setup();
    serving.renew(clock.now());
    serving.setListed([s("1"), s("2")]);
    serving.fetchLegacy();
    serving.setListed([s("2")]);
    serving.fetchLegacy(); // answer k drops "1": the worker may still be capturing it
    expect(serving.held()).toEqual(["1", "2"]);
    serving.fetchLegacy(); // k + 1: it may have received answer k only just before
    expect(serving.held()).toEqual(["1", "2"]);
    serving.fetchLegacy(); // k + 2: answer k was surely applied
    expect(serving.held()).toEqual(["2"]);
    serving.released(["2"]);
    expect(serving.held()).toEqual([]);
  });

  it("a quiet legacy worker's answers stop counting as held after WORKER_TIMEOUT", async () => {
    const { clock, serving } = setup();
    serving.renew(clock.now());
    serving.setListed([s("1")]);
    serving.fetchLegacy();
    serving.setListed([]);
    serving.fetchLegacy();
    await clock.advance(4_999);
    expect(serving.held()).toEqual(["1"]);
    await clock.advance(200);
    expect(serving.held()).toEqual([]);
  });

  it("property: every stream the worker could be processing is in held()", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ t: fc.constant("list" as const), ids: fc.uniqueArray(fc.integer({ min: 1, max: 6 }).map(String), { maxLength: 6 }) }),
            fc.record({ t: fc.constant("fetch" as const), confirm: fc.boolean() }),
            fc.record({ t: fc.constant("deliver" as const) }),
            fc.record({ t: fc.constant("renew" as const) }),
            fc.record({ t: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 2000 }) }),
          ),
          { maxLength: 40 },
        ),
        async (steps) => {
          const { clock, serving } = setup();
          // A model worker: it applies an answer only when "delivered"; its own lease
          // runs from when it sent the request.
          let inFlight: { version: number; ids: string[]; until: number } | undefined;
          let worker: { version: number | undefined; ids: string[]; until: number } = { version: undefined, ids: [], until: 0 };
          for (const st of steps) {
            if (st.t === "list") serving.setListed(st.ids.map(s));
            else if (st.t === "renew") serving.renew(clock.now());
            else if (st.t === "advance") await clock.advance(st.ms);
            else if (st.t === "fetch") {
              const sent = clock.now();
              const o = serving.fetch(st.confirm ? worker.version : undefined);
              inFlight = { version: o.version, ids: o.streams.map((x) => x.id), until: sent + o.leaseMs };
            } else if (st.t === "deliver" && inFlight) {
              worker = { ...inFlight };
              inFlight = undefined;
            }
            const now = clock.now();
            const held = new Set(serving.held(now));
            if (now < worker.until) for (const id of worker.ids) expect(held.has(id)).toBe(true);
            if (inFlight && now < inFlight.until) for (const id of inFlight.ids) expect(held.has(id)).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("long-poll", () => {
  it("returns as soon as the version changes", async () => {
    const { clock, serving } = setup();
    const v = serving.version;
    let done = false;
    const p = serving.waitForChange(v, 10_000).then(() => (done = true));
    await clock.advance(10);
    expect(done).toBe(false);
    serving.setListed([s("9")]);
    await p;
    expect(done).toBe(true);
  });
  it("returns after the wait when nothing changes", async () => {
    const { clock, serving } = setup();
    let done = false;
    const p = serving.waitForChange(serving.version, 500).then(() => (done = true));
    await clock.advance(499);
    expect(done).toBe(false);
    await clock.advance(1);
    await p;
    expect(done).toBe(true);
  });
});
