/**
 * What lets a rebalance skip the cooldown (leader/inputs.ts rebalanceTrigger).
 */
import { describe, expect, it } from "vitest";
import { rebalanceTrigger } from "../../leader/inputs.js";
import { RowsSummaries } from "../../leader/memo.js";
import type { MemberView } from "../../shared/membership.js";
import type { Heartbeat } from "../../shared/types.js";

const member = (id: string, o: Partial<Heartbeat> = {}, status: MemberView["status"] = "alive"): MemberView => ({
  id,
  status,
  present: true,
  silentMs: 0,
  firstSeenAt: 0,
  hb: {
    id, seq: 1, session: "s", capacity: 10, draining: false, mode: "orchestrated", useOrchestrator: true, version: 1, held: [], leaving: false, restarting: false,
    worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "", host: "", location: "", software: "", ...o,
  },
});
/** Rows per member once handoffs complete, as the leader passes them (RowsSummary.owned). */
const rows = (owners: Record<string, number>, handoffs: Record<string, string> = {}) => {
  const m = new Map<string, { owner: string; next: string | null }>();
  let k = 0;
  for (const [owner, n] of Object.entries(owners)) for (let i = 0; i < n; i++) m.set(String(++k), { owner, next: handoffs[owner] ?? null });
  return new RowsSummaries().of(m, 1).owned;
};

describe("rebalanceTrigger", () => {
  it("nothing when every member was already in the pool, unchanged, and holds streams", () => {
    expect(rebalanceTrigger([member("a"), member("b")], new Map([["a", 10], ["b", 10]]), rows({ a: 6, b: 4 }), 10, true)).toBeUndefined();
  });
  it("a newcomer joins", () => {
    expect(rebalanceTrigger([member("a"), member("b")], new Map([["a", 10]]), rows({ a: 10 }), 10, true)).toBe("join");
  });
  it("a member that holds nothing while there are streams joins, even if it was in the pool (regression: it waited out the cooldown after a leader change)", () => {
    expect(rebalanceTrigger([member("a"), member("b")], new Map([["a", 10], ["b", 10]]), rows({ a: 10 }), 10, true)).toBe("join");
  });
  it("a capacity change", () => {
    expect(rebalanceTrigger([member("a", { capacity: 20 }), member("b")], new Map([["a", 10], ["b", 10]]), rows({ a: 5, b: 5 }), 10, true)).toBe("capacity");
  });
  it("ignores members that cannot take streams: draining, leaving, dead, or without a worker", () => {
    const lastPool = new Map([["a", 10]]);
    const held = rows({ a: 10 });
    expect(rebalanceTrigger([member("a"), member("b", { draining: true })], lastPool, held, 10, true)).toBeUndefined();
    expect(rebalanceTrigger([member("a"), member("b", { leaving: true })], lastPool, held, 10, true)).toBeUndefined();
    expect(rebalanceTrigger([member("a"), member("b", {}, "dead")], lastPool, held, 10, true)).toBeUndefined();
    expect(rebalanceTrigger([member("a"), member("b", { worker: { ok: false, lastSeenMsAgo: null, processed: 0, errors: 0, kind: "none" } })], lastPool, held, 10, true)).toBeUndefined();
  });
  it("members serving by hashing hold no rows by design and never count as starving", () => {
    const lastPool = new Map([["a", 10], ["h", 10]]);
    expect(rebalanceTrigger([member("a"), member("h", { useOrchestrator: false, mode: "hashed" })], lastPool, rows({ a: 10 }), 10, true)).toBeUndefined();
  });

  it("a member promised rows in a handoff is not starving; one handing all its rows over is", () => {
    const lastPool = new Map([["a", 10], ["b", 10]]);
    expect(rebalanceTrigger([member("a"), member("b")], lastPool, rows({ a: 5, b: 5 }), 10, true)).toBeUndefined();
    expect(rebalanceTrigger([member("a"), member("b")], lastPool, rows({ a: 10 }, { a: "b" }), 10, true)).toBe("join");
    expect(rebalanceTrigger([member("a"), member("b")], lastPool, rows({ a: 5, c: 5 }, { c: "b" }), 10, true)).toBeUndefined();
  });

  it("an empty catalog triggers nothing", () => {
    expect(rebalanceTrigger([member("a"), member("b")], new Map([["a", 10], ["b", 10]]), rows({}), 0, true)).toBeUndefined();
  });
});
