/**
 * The leader's plan memo (leader/memo.ts): a plan is reused only when every input plan()
 * reads is equal to those it was computed from, and only a quiet plan; whatever the
 * inputs, the memo's answer equals plan()'s. Also the rows summary, once per rows version.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { PlanMemo, quiet, RowsSummaries, VOLATILE_HEARTBEAT, VOLATILE_VIEW, VOLATILE_WORKER } from "../../leader/memo.js";
import type { MemberView } from "../../shared/membership.js";
import { plan, type InstanceRow, type PlanInput, type Row } from "../../shared/placement/plan.js";
import type { HealthRecord } from "../../shared/stream-health-store.js";
import type { Heartbeat, Stream } from "../../shared/types.js";

const IDS = ["a", "b", "c"];
const STREAMS = Array.from({ length: 12 }, (_, i) => String(i + 1));
const ownerOf = (s: string) => IDS[Number(s) % IDS.length]!;

function heartbeat(id: string, o: Partial<Heartbeat> = {}): Heartbeat {
  return {
    id,
    seq: 1,
    session: `s-${id}`,
    capacity: 10,
    draining: false,
    mode: "orchestrated",
    useOrchestrator: true,
    version: 1,
    held: STREAMS.filter((s) => ownerOf(s) === id),
    leaving: false,
    restarting: false,
    worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" },
    startedAt: "2020-01-01T00:00:00.000Z",
    host: "h",
    location: "l",
    software: "1",
    ...o,
  };
}

function member(id: string, o: Partial<Heartbeat> = {}, view: Partial<MemberView> = {}): MemberView {
  return { id, hb: heartbeat(id, o), present: true, status: "alive", silentMs: 0, firstSeenAt: 0, ...view };
}

const catalog: Stream[] = STREAMS.map((id) => ({ id, url: `u${id}`, name: id, metadata: { city: "x" } }));
const rows = new Map<string, Row>(STREAMS.map((s) => [s, { stream: s, owner: ownerOf(s), state: "active", next: null, revokeVersion: null, reason: "catalog", url: `u${s}`, name: s, metadata: { city: "x" } }]));
const SETTINGS = { failoverAfterMs: 60_000, failureMemoryMs: 3_600_000, quarantineAfter: 3, quarantineRetryMs: 600_000, failoverBudgetPerMinute: 10 };

/** A settled cluster: its plan is quiet. Every call makes new objects (as every tick's reads do). */
function base(): PlanInput {
  return {
    epoch: 7,
    flag: "orchestrated",
    catalog,
    rows,
    instances: new Map<string, InstanceRow>(IDS.map((id) => [id, { id, draining: false, version: 1, epoch: 7, status: "active" }])),
    members: new Map(IDS.map((id) => [id, member(id)])),
    stamped: new Map(IDS.map((id) => [id, `s-${id}`])),
    policy: { imbalanceThreshold: 0.15, maxStreamDifference: 2, rebalanceAllowed: true, force: false, rebalanceReason: "imbalance" },
    requireWorker: true,
    honourPgCut: true,
    hashSettled: true,
    legacy: new Map(),
    health: { view: { records: new Map(), failures: new Map() }, settings: SETTINGS, budget: 10 },
  };
}

const withMember = (input: PlanInput, id: string, m: MemberView): PlanInput => ({ ...input, members: new Map([...input.members].map(([k, v]) => [k, k === id ? m : v])) });

function record(stream: string, o: Partial<HealthRecord> = {}): HealthRecord {
  return { stream, failingOn: null, failingSince: null, failingForMs: null, lastOkAt: null, lastError: null, lastErrorAt: null, quarantinedAt: null, retryAt: null, retryInMs: null, retries: 0, ...o };
}
const withRecords = (input: PlanInput, ...recs: HealthRecord[]): PlanInput => ({ ...input, health: { ...input.health!, view: { records: new Map(recs.map((r) => [r.stream, r])), failures: new Map() } } });

/** A memo that has computed the settled cluster's plan once. */
function primed(): PlanMemo {
  const memo = new PlanMemo();
  const p = memo.plan(base(), 1);
  expect(quiet(p)).toBe(true);
  return memo;
}

describe("PlanMemo", () => {
  it("reuses the plan when only what changes with every beat changed", () => {
    const memo = primed();
    const first = memo.plan(base(), 1);
    const input = withMember(base(), "a", member("a", { seq: 99, states: { "1": { s: "ok" } }, pgOk: false, redisOk: false, worker: { ok: true, lastSeenMsAgo: 5, processed: 1234, errors: 3, kind: "v1" } }, { silentMs: 800, present: false, firstSeenAt: 42 }));
    expect(memo.plan(input, 1)).toBe(first);
    expect(memo.hits).toBe(2);
    // A record's ages move with every read; below the rules' thresholds they change nothing.
    const failing = (ms: number) => withRecords(base(), record("1", { failingOn: "a", failingSince: "2020-01-01T00:00:00.000Z", failingForMs: ms, quarantinedAt: null }));
    const q = new PlanMemo();
    const p = q.plan(failing(1_000), 1);
    expect(q.plan(failing(2_000), 1)).toBe(p);
    expect(q.hits).toBe(1);
  });

  // Each input the plan is computed from: a change is never missed.
  const changes: [string, (i: PlanInput) => PlanInput][] = [
    ["a member joins", (i) => ({ ...i, members: new Map([...i.members, ["d", member("d", { held: [] })]]) })],
    ["a member leaves the view", (i) => ({ ...i, members: new Map([...i.members].filter(([k]) => k !== "c")) })],
    ["a member dies", (i) => withMember(i, "c", member("c", {}, { status: "dead" }))],
    ["a member is late (warning)", (i) => withMember(i, "c", member("c", {}, { status: "warning" }))],
    ["a member lets a stream go", (i) => withMember(i, "a", member("a", { held: STREAMS.filter((s) => ownerOf(s) === "a").slice(1) }))],
    ["a member releases a stream", (i) => withMember(i, "a", member("a", { released: ["3"] }))],
    ["a member drains", (i) => withMember(i, "b", member("b", { draining: true }))],
    ["a member's instance row drains", (i) => ({ ...i, instances: new Map([...i.instances].map(([k, v]) => [k, k === "b" ? { ...v, draining: true } : v])) })],
    ["a member's capacity changes", (i) => withMember(i, "b", member("b", { capacity: 1 }))],
    ["a member's worker goes away", (i) => withMember(i, "b", member("b", { worker: { ok: false, lastSeenMsAgo: null, processed: 0, errors: 0, kind: "none" } }))],
    ["a member restarts (new session)", (i) => withMember(i, "b", member("b", { session: "s-b2" }))],
    ["a member's loaded version", (i) => withMember(i, "b", member("b", { version: 2 }))],
    ["a member serves by hashing", (i) => withMember(i, "b", member("b", { mode: "hashed" }))],
    ["a member is cut from PostgreSQL", (i) => withMember(i, "b", member("b", { pgCut: true }))],
    ["a member is degraded", (i) => withMember(i, "b", member("b", { degraded: { reason: "failures" } }))],
    ["a member's labels", (i) => withMember(i, "b", member("b", { labels: { exit: "br" } }))],
    ["the members' order", (i) => ({ ...i, members: new Map([...i.members].reverse()) })],
    ["the catalog", (i) => ({ ...i, catalog: [...catalog, { id: "13", url: "u13", name: "13", metadata: {} }] })],
    ["the catalog (same content, another read)", (i) => ({ ...i, catalog: [...catalog] })],
    ["the mode flag", (i) => ({ ...i, flag: "hashed" })],
    ["the epoch", (i) => ({ ...i, epoch: 8 })],
    ["an instance row's epoch", (i) => ({ ...i, instances: new Map([...i.instances].map(([k, v]) => [k, k === "a" ? { ...v, epoch: 6 } : v])) })],
    ["an instance row's status", (i) => ({ ...i, instances: new Map([...i.instances].map(([k, v]) => [k, k === "a" ? { ...v, status: "inactive" } : v])) })],
    ["the session stamps", (i) => ({ ...i, stamped: new Map([...i.stamped!].filter(([k]) => k !== "a")) })],
    ["the legacy streams", (i) => ({ ...i, legacy: new Map([["2", "legacy-1"]]) })],
    ["the policy (forced)", (i) => ({ ...i, policy: { ...i.policy, force: true } })],
    ["the policy (cooldown over)", (i) => ({ ...i, policy: { ...i.policy, rebalanceAllowed: false } })],
    ["the policy (reason)", (i) => ({ ...i, policy: { ...i.policy, rebalanceReason: "join" } })],
    ["REQUIRE_WORKER", (i) => ({ ...i, requireWorker: false })],
    ["honourPgCut", (i) => ({ ...i, honourPgCut: false })],
    ["hashSettled", (i) => ({ ...i, hashSettled: false })],
    ["the failure budget", (i) => ({ ...i, health: { ...i.health!, budget: 9 } })],
    ["the health settings", (i) => ({ ...i, health: { ...i.health!, settings: { ...SETTINGS, quarantineAfter: 2 } } })],
    ["a health record appears", (i) => withRecords(i, record("1", { failingOn: "b", failingSince: "2020-01-01T00:00:00.000Z", failingForMs: 10 }))],
    ["a failure episode lasts STREAM_FAILOVER_AFTER", (i) => withRecords(i, record("1", { failingOn: "b", failingSince: "2020-01-01T00:00:00.000Z", failingForMs: 60_000 }))],
    ["a quarantine", (i) => withRecords(i, record("1", { quarantinedAt: "2020-01-01T00:00:00.000Z", retryInMs: 1000 }))],
    ["a remembered failure", (i) => ({ ...i, health: { ...i.health!, view: { records: new Map(), failures: new Map([["1", [{ instance: "b", exit: null, error: null, at: "2020-01-01T00:00:00.000Z", agoMs: 1, sinceOk: true }]]]) } } })],
    ["no health view", (i) => ({ ...i, health: undefined })],
  ];
  for (const [what, change] of changes) {
    it(`computes again when ${what} changes`, () => {
      const memo = primed();
      const input = change(base());
      const p = memo.plan(input, 1);
      expect(memo.misses).toBe(2);
      expect(p).toEqual(plan(input));
    });
  }

  it("computes again when the rows version changes", () => {
    const memo = primed();
    memo.plan(base(), 2);
    expect(memo.misses).toBe(2);
  });

  it("computes again when the stamps it saw were changed in place", () => {
    const memo = new PlanMemo();
    const stamped = new Map(IDS.map((id) => [id, `s-${id}`]));
    memo.plan({ ...base(), stamped }, 1);
    stamped.set("a", "s-a2");
    memo.plan({ ...base(), stamped }, 1);
    expect(memo.misses).toBe(2);
  });

  it("a quarantine's retry falling due is a change; its countdown is not", () => {
    const memo = new PlanMemo();
    // Stream 1 is quarantined: no row, nobody holds it.
    const q = (retryInMs: number) => {
      const i = withRecords(base(), record("1", { quarantinedAt: "2020-01-01T00:00:00.000Z", retryInMs }));
      const b = i.members.get("b")!;
      return { ...withMember(i, "b", { ...b, hb: { ...b.hb!, held: b.hb!.held.filter((x) => x !== "1") } }), rows: new Map([...rows].filter(([k]) => k !== "1")) };
    };
    const rowsOf = q(0).rows;
    const at = (retryInMs: number) => ({ ...q(retryInMs), rows: rowsOf });
    const p = memo.plan(at(5_000), 1);
    expect(quiet(p)).toBe(true);
    expect(memo.plan(at(4_000), 1)).toBe(p);
    expect(memo.plan(at(0), 1)).toEqual(plan(at(0)));
    expect(memo.misses).toBe(2);
  });

  it("never reuses a plan that changes something", () => {
    const memo = new PlanMemo();
    const input = { ...base(), epoch: 8 }; // every member must learn the epoch: a bump
    const p = memo.plan(input, 1);
    expect(quiet(p)).toBe(false);
    memo.plan({ ...input }, 1);
    expect(memo.hits).toBe(0);
  });

  it("a new term forgets the last plan", () => {
    const memo = primed();
    memo.clear();
    memo.plan(base(), 1);
    expect(memo.misses).toBe(2);
  });

  it("whatever the inputs, its answer is plan()'s", () => {
    // Random walks over the inputs: each step changes one thing (or only beat-to-beat noise).
    const step = fc.oneof(
      fc.constant((i: PlanInput) => withMember(i, "a", member("a", { seq: 5, worker: { ok: true, lastSeenMsAgo: 9, processed: 7, errors: 1, kind: "v1" } }, { silentMs: 300 }))),
      fc.constant((i: PlanInput) => ({ ...i })),
      fc.constantFrom(...changes.map(([, c]) => c)),
      fc.constant((i: PlanInput) => withMember(i, "c", member("c", { held: [] }, { status: "left" }))),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(step, fc.integer({ min: 1, max: 2 })), { maxLength: 8 }), (steps) => {
        const memo = new PlanMemo();
        let input = base();
        expect(memo.plan(input, 1)).toEqual(plan(input));
        for (const [change, version] of steps) {
          input = change(input);
          expect(memo.plan(input, version)).toEqual(plan(input));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("plan() reads none of the volatile fields the memo ignores", () => {
    fc.assert(
      fc.property(fc.constantFrom(...IDS), fc.integer({ min: 0, max: 1e6 }), fc.boolean(), (id, n, flag) => {
        const input = base();
        const m = input.members.get(id)!;
        const noisy: Record<string, unknown> = { ...m.hb! };
        for (const k of VOLATILE_HEARTBEAT) noisy[k] = k === "states" ? { [String(n)]: { s: "failing", e: "x" } } : k === "seq" ? n : flag;
        const worker: Record<string, unknown> = { ...m.hb!.worker };
        for (const k of VOLATILE_WORKER) worker[k] = n;
        noisy.worker = worker;
        const view: Record<string, unknown> = { ...m, hb: noisy };
        for (const k of VOLATILE_VIEW) view[k] = k === "present" ? flag : n;
        expect(plan(withMember(input, id, view as unknown as MemberView))).toEqual(plan(input));
      }),
      { numRuns: 200 },
    );
  });
});

describe("RowsSummaries", () => {
  it("counts rows by their owner once the handoffs complete, and names owners and targets; once per version", () => {
    const s = new RowsSummaries();
    const r = new Map<string, Pick<Row, "owner" | "next">>([
      ["1", { owner: "a", next: null }],
      ["2", { owner: "a", next: "b" }],
      ["3", { owner: "c", next: null }],
    ]);
    const x = s.of(r, 1);
    expect([...x.owners].sort()).toEqual(["a", "c"]);
    expect([...x.named].sort()).toEqual(["a", "b", "c"]);
    expect(Object.fromEntries(x.owned)).toEqual({ a: 1, b: 1, c: 1 });
    r.delete("3");
    expect(s.of(r, 1)).toBe(x);
    expect(Object.fromEntries(s.of(r, 2).owned)).toEqual({ a: 1, b: 1 });
  });
});
