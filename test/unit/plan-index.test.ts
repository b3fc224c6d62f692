/**
 * What plan.ts computes once per catalog (shared/placement/catalog-index.ts) and the
 * orders and holders it derives from it: the row operations come in stream id order
 * (the default sort), rows of streams that left the catalog included; a stream two live
 * members list is adopted by neither and given to nobody; a row whose metadata
 * serialises differently from its stream's is written again.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { catalogIndex, sameMetadata } from "../../shared/placement/catalog-index.js";
import { plan, type InstanceRow, type Row } from "../../shared/placement/plan.js";
import type { MemberView } from "../../shared/membership.js";
import type { Heartbeat, Stream } from "../../shared/types.js";

const stream = (id: string, metadata: Record<string, unknown> = {}): Stream => ({ id, url: `u${id}`, name: id, metadata });
const row = (s: string, owner: string, metadata: Record<string, unknown> = {}): Row => ({ stream: s, owner, state: "active", next: null, revokeVersion: null, reason: "catalog", url: `u${s}`, name: s, metadata });

function member(id: string, held: string[]): MemberView {
  const hb: Heartbeat = {
    id, seq: 1, session: "s", capacity: 50, draining: false, mode: "orchestrated", useOrchestrator: true, version: 1, held, leaving: false, restarting: false,
    worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "", host: "", location: "", software: "",
  };
  return { id, hb, present: true, status: "alive", silentMs: 0, firstSeenAt: 0 };
}
const instances = new Map<string, InstanceRow>(["a", "b"].map((id) => [id, { id, draining: false, version: 1, epoch: 1, status: "active" }]));
const policy = { imbalanceThreshold: 0.15, maxStreamDifference: 3, rebalanceAllowed: true };
const opStream = (o: ReturnType<typeof plan>["ops"][number]) => (o.op === "put" ? o.row.stream : o.stream);

describe("catalogIndex", () => {
  it("indexes by id (the last duplicate wins) and sorts the distinct ids, once per catalog", () => {
    const catalog = [stream("10"), stream("9"), stream("b"), stream("9", { x: 1 }), stream("A")];
    const ix = catalogIndex(catalog);
    expect(ix.sortedIds).toEqual(["10", "9", "A", "b"]);
    expect(ix.byId.get("9")!.metadata).toEqual({ x: 1 });
    expect(catalogIndex(catalog)).toBe(ix);
    expect(catalogIndex([...catalog])).not.toBe(ix);
  });

  it("sameMetadata is JSON.stringify equality", () => {
    const json = fc.jsonValue();
    const same = (a: unknown, b: unknown) => expect(sameMetadata(a, b)).toBe(JSON.stringify(a) === JSON.stringify(b));
    fc.assert(
      fc.property(json, json, (a, b) => {
        same(a, b);
        expect(sameMetadata(a, structuredClone(a))).toBe(true);
      }),
    );
    // Flat objects (what catalog metadata is), alike or nearly so.
    const scalar = fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.integer(), fc.double(), fc.constant(undefined), fc.constant(-0));
    fc.assert(
      fc.property(fc.dictionary(fc.string(), scalar), fc.string(), scalar, fc.boolean(), (d, k, v, reorder) => {
        const copy = reorder ? Object.fromEntries(Object.entries(d).reverse()) : { ...d };
        same(d, copy);
        same(d, { ...d, [k]: v });
      }),
      { numRuns: 500 },
    );
    for (const [a, b] of [[{ a: undefined }, {}], [{ a: NaN }, { a: null }], [{ a: -0 }, { a: 0 }], [{ a: Infinity }, { a: null }], [{ a: { b: 1 } }, { a: { b: 1 } }], [{ a: [1] }, { a: [2] }], [{ "1": 1, b: 2 }, { b: 2, "1": 1 }]] as const) same(a, b);
    expect(sameMetadata({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(false);
  });
});

describe("plan's orders and holders", () => {
  it("lists its row operations in stream id order, rows outside the catalog included", () => {
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[0-9a-c]{1,3}$/), { maxLength: 20 }),
        fc.array(fc.tuple(fc.stringMatching(/^[0-9a-c]{1,3}$/), fc.constantFrom("a", "b", "gone")), { maxLength: 20 }),
        (ids, rowList) => {
          const catalog = ids.map((id) => stream(id));
          const rows = new Map(rowList.map(([s, o]) => [s, row(s, o)]));
          const members = new Map([["a", member("a", [])], ["b", member("b", [])]]);
          const p = plan({ epoch: 1, flag: "orchestrated", catalog, rows, instances, members, policy, requireWorker: false });
          const order = p.ops.map(opStream);
          expect(order).toEqual([...order].sort());
          // Every row of a stream that left the catalog goes (deleted, or revoked from a live owner).
          for (const s of rows.keys()) if (!ids.includes(s)) expect(order).toContain(s);
        },
      ),
    );
  });

  it("a stream two live members list is adopted by neither and given to nobody", () => {
    const catalog = [stream("1"), stream("2")];
    const members = new Map([["a", member("a", ["1", "2"])], ["b", member("b", ["1"])]]);
    const p = plan({ epoch: 1, flag: "orchestrated", catalog, rows: new Map(), instances, members, policy, requireWorker: false });
    expect(p.ops.map(opStream)).toEqual(["2"]);
    expect(p.waiting).toEqual(["1"]);
  });

  it("writes a row again when its metadata differs from its stream's", () => {
    const catalog = [stream("1", { city: "x" }), stream("2", { city: "y" })];
    const rows = new Map([["1", row("1", "a", { city: "x" })], ["2", row("2", "a", { city: "z" })]]);
    const members = new Map([["a", member("a", ["1", "2"])]]);
    const p = plan({ epoch: 1, flag: "orchestrated", catalog, rows, instances, members, policy, requireWorker: false });
    expect(p.ops.map(opStream)).toEqual(["2"]);
  });
});
