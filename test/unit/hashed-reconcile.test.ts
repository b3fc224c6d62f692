/**
 * A hashing agent's offer (agent/reconcile.ts with agent/hashed-view.ts), step by step on
 * explicit times:
 * - flipping a settled fleet to hashed: every member keeps exactly what it holds;
 * - the leader lost after the view settled: its streams are taken at once, nothing else moves;
 * - a view that just changed: a stream is taken only once a read HASH_SETTLE later still
 *   gives it, so peers that read the change a moment apart cannot both take it;
 * - a view that is not whole changes nothing;
 * - the assignor runs again only when the inputs changed.
 */
import { describe, expect, it } from "vitest";
import { reconcile, type ReconcileInput, type ReconcileResult } from "../../agent/reconcile.js";
import type { HashedView } from "../../agent/hashed-view.js";
import type { MemberView, Snapshot } from "../../shared/membership.js";
import { assign } from "../../shared/placement/assignor.js";
import { hashingBasis } from "../../shared/placement/hash-owners.js";
import type { Heartbeat, Mode, Stream } from "../../shared/types.js";

const SETTLE = 2000;
const POLICY = { imbalanceThreshold: 0.15, maxStreamDifference: 3 };
const stream = (id: string): Stream => ({ id, url: `u${id}`, name: id, metadata: {} });
const catalog = Array.from({ length: 90 }, (_, i) => stream(String(i + 1)));
const CAPS: Record<string, number> = { a: 50, b: 50, c: 50 };
const BASIS = hashingBasis(catalog, POLICY);

/** `basis: null`: a peer that publishes none (an earlier version). */
function member(id: string, held: readonly string[], status: MemberView["status"] = "alive", o: { basis?: string | null; labels?: Record<string, string> } = {}): MemberView {
  const hb: Heartbeat = {
    hashBasis: o.basis === null ? undefined : (o.basis ?? BASIS),
    labels: o.labels,
    id, seq: 1, session: "s", capacity: CAPS[id] ?? 50, draining: false, mode: "hashed", useOrchestrator: true, version: 0, held: [...held], leaving: false, restarting: false,
    worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "", host: "", location: "", software: "",
  };
  return { id, hb, present: true, status, silentMs: 0, firstSeenAt: 0 };
}

function snapshot(members: MemberView[], at: number, o: { grewAt?: number; whole?: boolean } = {}): Snapshot {
  return { at, members: new Map(members.map((m) => [m.id, m])), leader: undefined, flag: undefined, incarnation: "i", viewVersion: 1, viewGrewAt: o.grewAt ?? 0, channels: { redis: true, postgres: true }, whole: o.whole };
}

/** The leader's settled placement of the catalog over a, b, c. */
const leader = assign({ streams: catalog.map((s) => s.id), members: Object.entries(CAPS).map(([id, capacity]) => ({ id, capacity, draining: false })), current: new Map(), policy: { ...POLICY, rebalanceAllowed: true, force: true } }).assignment;
const heldBy = (id: string): string[] => [...leader].filter(([, o]) => o === id).map(([s]) => s);

/** One agent: feed it views, get its offers; it keeps its hashed view between steps. */
function agent(me: string, own: readonly Stream[] = catalog) {
  let listed: Stream[] = own.filter((s) => leader.get(s.id) === me);
  let view: HashedView | undefined;
  return {
    step(now: number, snap: Snapshot, mode: Mode = "hashed", o: Partial<ReconcileInput> = {}): ReconcileResult & { ids: string[] } {
      const r = reconcile({ me, now, mode, listed, rows: mode === "orchestrated" ? listed : undefined, catalog: own, snapshot: snap, hashSettleMs: SETTLE, maxViewAgeMs: 3000, hashPolicy: POLICY, hashedView: view, ...o });
      listed = r.streams;
      view = r.hashedView;
      return { ...r, ids: r.streams.map((s) => s.id) };
    },
    get view() {
      return view;
    },
  };
}

const settledFleet = (at: number) => snapshot(["a", "b", "c"].map((id) => member(id, heldBy(id))), at);

describe("a hashing agent", () => {
  it("keeps exactly what it holds when a settled fleet flips to hashed: no release, no take", () => {
    for (const id of ["a", "b", "c"]) {
      const r = agent(id).step(100_000, settledFleet(100_000));
      expect(r.ids.sort()).toEqual(heldBy(id).sort());
      expect(r.blocked).toEqual([]);
    }
  });

  it("takes the lost leader's streams at once when the view has not changed since its death, and nothing else moves", () => {
    const a = agent("a");
    const b = agent("b");
    const alive = settledFleet(0);
    const cDead = (at: number) => snapshot([member("a", heldBy("a")), member("b", heldBy("b")), member("c", heldBy("c"), "dead")], at);
    // Orchestrated while the leader (c) lives and dies; no leader for the grace period
    // (the hashed view is watched), then hashing.
    for (const x of [a, b]) x.step(0, alive, "orchestrated", { watchHashed: true });
    for (const x of [a, b]) x.step(1000, cDead(1000), "orchestrated", { watchHashed: true });
    for (const x of [a, b]) x.step(5000, cDead(5000), "orchestrated", { watchHashed: true });
    const ra = a.step(10_000, cDead(10_000));
    const rb = b.step(10_000, cDead(10_000));
    expect(ra.blocked).toEqual([]);
    expect(rb.blocked).toEqual([]);
    for (const s of heldBy("a")) expect(ra.ids).toContain(s);
    for (const s of heldBy("b")) expect(rb.ids).toContain(s);
    // c's streams are split between them, each taken once.
    const taken = [...ra.ids, ...rb.ids].filter((s) => leader.get(s) === "c");
    expect(new Set(taken).size).toBe(taken.length);
    expect(taken.sort()).toEqual(heldBy("c").sort());
  });

  it("takes its part at once at the switch even after a peer took its own part, and only its part", () => {
    const a = agent("a");
    const b = agent("b");
    const cDead = (at: number, bHeld = heldBy("b")) => snapshot([member("a", heldBy("a")), member("b", bHeld), member("c", heldBy("c"), "dead")], at);
    for (const x of [a, b]) x.step(0, settledFleet(0), "orchestrated", { watchHashed: true });
    for (const x of [a, b]) x.step(1000, cDead(1000), "orchestrated", { watchHashed: true });
    // b switches first and takes its part of c's streams.
    const rb = b.step(6000, cDead(6000));
    const bTook = rb.ids.filter((s) => leader.get(s) === "c");
    expect(bTook.length).toBeGreaterThan(0);
    // a, still orchestrated, sees b's takes (its view changed), then switches.
    a.step(6500, cDead(6500, rb.ids), "orchestrated", { watchHashed: true });
    expect(a.view!.changedAt).toBe(6500);
    const ra = a.step(7000, cDead(7000, rb.ids));
    expect(ra.blocked).toEqual([]);
    const aTook = ra.ids.filter((s) => leader.get(s) === "c");
    expect([...aTook, ...bTook].sort()).toEqual(heldBy("c").sort());
  });

  it("takes nothing while a peer that may take hashes with another basis (another catalog version, or an earlier version serving by hashing without one)", () => {
    const cDead = (at: number, basis: string | null) => snapshot([member("a", heldBy("a")), member("b", heldBy("b"), "alive", { basis }), member("c", heldBy("c"), "dead")], at);
    for (const bBasis of ["91-0000000000000000-0.15/3", null]) {
      const a = agent("a");
      for (const t of [0, 1000, 5000]) a.step(t, cDead(t, bBasis), "orchestrated", { watchHashed: true });
      const r = a.step(10_000, cDead(10_000, bBasis));
      expect(r.ids.sort()).toEqual(heldBy("a").sort()); // keeps what it holds, takes nothing
      expect(r.blocked.length).toBeGreaterThan(0);
      expect(a.view!.basis).toBe(BASIS);
      // Once the peer hashes with the same basis, the lost leader's streams are taken.
      const again = a.step(11_000, cDead(11_000, BASIS));
      expect(again.blocked).toEqual([]);
      expect(again.ids.length).toBeGreaterThan(heldBy("a").length);
    }
    // A dead peer's or a draining peer's basis does not matter (it takes nothing).
    const a = agent("a");
    const drained = (at: number) => snapshot([member("a", heldBy("a")), { ...member("b", []), hb: { ...member("b", [], "alive", { basis: null }).hb!, draining: true } }, member("c", heldBy("c"), "dead")], at);
    for (const t of [0, 1000, 5000]) a.step(t, drained(t), "orchestrated", { watchHashed: true });
    expect(a.step(10_000, drained(10_000)).blocked).toEqual([]);
  });

  it("two agents whose catalogs differ never both take one stream: without the basis rule some would", () => {
    // b's catalog is newer: the operator pinned one of the lost leader's streams to exit=br,
    // which only b has; a's cache still has it unconstrained.
    let overlapsWithoutRule = 0;
    for (const pinned of heldBy("c")) {
      const newer = catalog.map((s) => (s.id === pinned ? { ...s, constraint: { exit: "br" } } : s));
      const basisB = hashingBasis(newer, POLICY);
      expect(basisB).not.toBe(BASIS);
      for (const forged of [false, true]) {
        // forged: each agent reads its peer's basis as its own (the rule defeated).
        const a = agent("a");
        const b = agent("b", newer);
        const view = (at: number, forA: boolean) =>
          snapshot([member("a", heldBy("a"), "alive", { basis: forged && !forA ? basisB : BASIS }), member("b", heldBy("b"), "alive", { basis: forged && forA ? BASIS : basisB, labels: { exit: "br" } }), member("c", heldBy("c"), "dead")], at);
        for (const t of [0, 1000, 5000]) {
          a.step(t, view(t, true), "orchestrated", { watchHashed: true });
          b.step(t, view(t, false), "orchestrated", { watchHashed: true });
        }
        const ta = a.step(10_000, view(10_000, true)).ids;
        const tb = new Set(b.step(10_000, view(10_000, false)).ids);
        const both = ta.filter((s) => tb.has(s));
        if (forged) overlapsWithoutRule += both.length > 0 ? 1 : 0;
        else expect(both).toEqual([]);
      }
    }
    expect(overlapsWithoutRule).toBeGreaterThan(0);
  });

  it("without watching before the switch, waits HASH_SETTLE after its first view", () => {
    const a = agent("a");
    const cDead = (at: number) => snapshot([member("a", heldBy("a")), member("b", heldBy("b")), member("c", heldBy("c"), "dead")], at);
    a.step(0, cDead(0), "orchestrated");
    expect(a.view).toBeUndefined();
    expect(a.step(10_000, cDead(10_000)).blocked.length).toBeGreaterThan(0);
    expect(a.step(12_000, cDead(12_000)).blocked).toEqual([]);
  });

  it("after a change, takes a stream only once a view read HASH_SETTLE after it first wanted it still gives it", () => {
    const a = agent("a");
    a.step(0, settledFleet(0));
    a.step(1000, settledFleet(1000));
    const cDead = (at: number) => snapshot([member("a", heldBy("a")), member("b", heldBy("b")), member("c", heldBy("c"), "dead")], at);
    const first = a.step(3000, cDead(3000));
    expect(first.blocked.length).toBeGreaterThan(0);
    expect(first.ids.sort()).toEqual(heldBy("a").sort());
    // Time passes, but no newer read: still nothing taken.
    expect(a.step(4000, cDead(3000)).ids.sort()).toEqual(heldBy("a").sort());
    // A read 1.9 s after the first want: not yet.
    expect(a.step(4900, cDead(4900)).ids.sort()).toEqual(heldBy("a").sort());
    // A read HASH_SETTLE after: taken.
    const later = a.step(5000, cDead(5000));
    expect(later.blocked).toEqual([]);
    expect(later.ids.length).toBeGreaterThan(heldBy("a").length);
  });

  it("a want that breaks starts its wait again", () => {
    const a = agent("a");
    const cDead = (at: number) => snapshot([member("a", heldBy("a")), member("b", heldBy("b")), member("c", heldBy("c"), "dead")], at);
    a.step(0, settledFleet(0));
    const wanted = a.step(1000, cDead(1000)).blocked;
    expect(wanted.length).toBeGreaterThan(0);
    a.step(2000, settledFleet(2000)); // c is back (a flap): nothing of c's is wanted any more
    expect(a.step(3000, cDead(3000)).blocked).toEqual(wanted);
    expect(a.step(4500, cDead(4500)).blocked).toEqual(wanted);
    expect(a.step(5000, cDead(5000)).blocked).toEqual([]);
  });

  it("takes a stream wanted without a break even while unrelated inputs keep changing", () => {
    const a = agent("a");
    // b's held list changes at every read (streams outside the catalog): the view never settles.
    const view = (at: number) => snapshot([member("a", heldBy("a")), member("b", [...heldBy("b"), `x${at}`]), member("c", heldBy("c"), "dead")], at);
    a.step(0, settledFleet(0));
    for (const t of [1000, 2000]) expect(a.step(t, view(t)).ids.sort()).toEqual(heldBy("a").sort());
    expect(a.view!.changedAt).toBe(2000);
    const r = a.step(3000, view(3000));
    expect(r.blocked).toEqual([]);
    expect(r.ids.length).toBeGreaterThan(heldBy("a").length);
  });

  it("never takes a stream a live member still holds, however settled the view", () => {
    const a = agent("a");
    // c drains (weight 0) but still holds its streams: a wants some, takes none until c lets go.
    const draining = (at: number, cHeld: string[]) => {
      const c = member("c", cHeld);
      return snapshot([member("a", heldBy("a")), member("b", heldBy("b")), { ...c, hb: { ...c.hb!, draining: true } }], at);
    };
    a.step(0, draining(0, heldBy("c")));
    const r = a.step(5000, draining(5000, heldBy("c")));
    expect(r.blocked.length).toBeGreaterThan(0);
    expect(r.ids.sort()).toEqual(heldBy("a").sort());
    const after = a.step(6000, draining(6000, []));
    expect(after.ids.length).toBeGreaterThan(heldBy("a").length);
  });

  it("changes nothing from a view that is not whole (a follower's read)", () => {
    const a = agent("a");
    const partial = snapshot([member("c", heldBy("c"))], 10_000, { whole: false });
    const r = a.step(10_000, partial);
    expect(r.ids.sort()).toEqual(heldBy("a").sort());
  });

  it("runs the assignor again only when the inputs changed", () => {
    const a = agent("a");
    a.step(0, settledFleet(0));
    const owners = a.view!.owners;
    expect(owners).toBeDefined();
    // Newer heartbeats with the same contents (new arrays): the same owners, the same age.
    a.step(1000, settledFleet(1000));
    expect(a.view!.owners).toBe(owners);
    expect(a.view!.changedAt).toBe(0);
    // b holds one stream fewer: computed again.
    const bHeld = heldBy("b").slice(1);
    a.step(2000, snapshot([member("a", heldBy("a")), member("b", bHeld), member("c", heldBy("c"))], 2000));
    expect(a.view!.owners).not.toBe(owners);
    expect(a.view!.changedAt).toBe(2000);
  });
});
