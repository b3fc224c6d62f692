/**
 * Whether a heartbeat says something new (shared/redis-protocol.ts saysNothingNew): the
 * heartbeat script stores a member's payload for the deciders only then (or every tenth
 * beat). It must agree with comparing the two heartbeats' JSON texts without what changes
 * at every beat (seq, the worker's counters and last call), which it replaces.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { saysNothingNew } from "../../shared/redis-protocol.js";
import type { Heartbeat } from "../../shared/types.js";

const base: Heartbeat = {
  id: "a", seq: 1, session: "s", capacity: 10, draining: false, mode: "orchestrated", useOrchestrator: true, version: 3, held: ["1", "2"], leaving: false, restarting: false,
  worker: { ok: true, lastSeenMsAgo: 5, processed: 1, errors: 0, kind: "v1" }, startedAt: "2020-01-01T00:00:00.000Z", host: "h", location: "l", software: "1",
  states: { "1": { s: "ok" }, "2": { s: "failed", e: "403" } },
};

/** The comparison it replaces: the JSON texts without what changes at every beat. */
const print = (hb: Heartbeat) => JSON.stringify({ ...hb, seq: 0, worker: { ...hb.worker, lastSeenMsAgo: 0, processed: 0, errors: 0 } });

describe("a heartbeat that says something new", () => {
  it("is told apart from one that only moved its seq or its worker's counters", () => {
    const same = (o: Partial<Heartbeat>) => saysNothingNew(base, { ...base, ...o });
    expect(same({ seq: 9, worker: { ...base.worker, lastSeenMsAgo: 900, processed: 7, errors: 2 } })).toBe(true);
    expect(same({ held: ["1", "2"], states: { "1": { s: "ok" }, "2": { s: "failed", e: "403" } } })).toBe(true); // equal copies
    expect(same({ labels: undefined })).toBe(true); // absent from the JSON text either way
    expect(same({ held: ["1"] })).toBe(false);
    expect(same({ held: ["2", "1"] })).toBe(false);
    expect(same({ states: { "1": { s: "ok" }, "2": { s: "failed", e: "404" } } })).toBe(false);
    expect(same({ states: undefined })).toBe(false);
    expect(same({ worker: { ...base.worker, ok: false } })).toBe(false);
    expect(same({ capacity: 11 })).toBe(false);
    expect(same({ labels: { zone: "x" } })).toBe(false);
    expect(same({ released: [] })).toBe(false);
  });

  it("agrees with comparing the JSON texts, for any two heartbeats", () => {
    const ids = fc.array(fc.constantFrom("1", "2", "3"), { maxLength: 3 });
    const hb = fc.record({
      seq: fc.nat(3),
      capacity: fc.nat(2),
      held: ids,
      draining: fc.boolean(),
      worker: fc.record({ ok: fc.boolean(), lastSeenMsAgo: fc.nat(3), processed: fc.nat(3), errors: fc.nat(3), kind: fc.constantFrom("v1", "legacy") }),
      states: fc.option(fc.dictionary(fc.constantFrom("1", "2"), fc.record({ s: fc.constantFrom("ok", "failed") })), { nil: undefined }),
      labels: fc.option(fc.constantFrom({ a: "1" }, { a: "2" }), { nil: undefined }),
    });
    fc.assert(
      fc.property(hb, hb, (x, y) => {
        const a = { ...base, ...x } as Heartbeat;
        const b = { ...base, ...y } as Heartbeat;
        expect(saysNothingNew(a, b)).toBe(print(a) === print(b));
      }),
      { numRuns: 2000 },
    );
  });
});
