/**
 * Failure-aware placement (shared/placement/health-rules.ts through plan()): labels,
 * failing streams, the failure memory, quarantine and its retries, degraded workers and
 * the failover budget. Ages come measured (by PostgreSQL's clock in production), so these
 * rules need no clock: each case states the ages it is about.
 */
import { describe, expect, it } from "vitest";
import type { StreamHealthSettings } from "../../shared/config.js";
import type { MemberView } from "../../shared/membership.js";
import { plan, type InstanceRow, type PlanInput, type Row } from "../../shared/placement/plan.js";
import { retryDelay } from "../../shared/placement/health-rules.js";
import type { ChargedFailure, HealthRecord, HealthView } from "../../shared/stream-health-store.js";
import type { Heartbeat, Stream, WorkerDegraded } from "../../shared/types.js";

const SETTINGS: StreamHealthSettings = { failoverAfterMs: 120_000, failureMemoryMs: 6 * 3_600_000, quarantineAfter: 3, quarantineRetryMs: 900_000, failoverBudgetPerMinute: 20 };
const stream = (id: string, constraint?: Record<string, string>): Stream => ({ id, url: `u${id}`, name: id, metadata: {}, ...(constraint ? { constraint } : {}) });
const row = (s: string, owner: string): Row => ({ stream: s, owner, state: "active", next: null, revokeVersion: null, reason: "catalog", url: `u${s}`, name: s, metadata: {} });

function member(id: string, held: string[], o: { labels?: Record<string, string>; degraded?: WorkerDegraded; capacity?: number } = {}): MemberView {
  const hb: Heartbeat = {
    id, seq: 1, session: "s", capacity: o.capacity ?? 10, draining: false, mode: "orchestrated", useOrchestrator: true, version: 1, held, leaving: false, restarting: false,
    worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "", host: "", location: "", software: "", labels: o.labels, degraded: o.degraded,
  };
  return { id, hb, present: true, status: "alive", silentMs: 0, firstSeenAt: 0 };
}

function record(stream: string, r: Partial<HealthRecord>): HealthRecord {
  return { stream, failingOn: null, failingSince: null, failingForMs: null, lastOkAt: null, lastError: null, lastErrorAt: null, quarantinedAt: null, retryAt: null, retryInMs: null, retries: 0, ...r };
}
const failure = (instance: string, o: Partial<ChargedFailure> = {}): ChargedFailure => ({ instance, exit: null, error: "403", at: "", agoMs: 1000, sinceOk: true, ...o });

interface Case {
  readonly members: MemberView[];
  /** stream → owner (a held, active row). */
  readonly owners: Record<string, string>;
  readonly catalog?: Stream[];
  readonly records?: HealthRecord[];
  readonly failures?: Record<string, ChargedFailure[]>;
  readonly budget?: number;
}

function run(c: Case) {
  const catalog = c.catalog ?? Object.keys(c.owners).map((s) => stream(s));
  const rows = new Map(Object.entries(c.owners).map(([s, o]) => [s, row(s, o)] as const));
  const instances = new Map<string, InstanceRow>(c.members.map((m) => [m.id, { id: m.id, draining: false, version: 1, epoch: 1, status: "active" }]));
  const view: HealthView = { records: new Map((c.records ?? []).map((r) => [r.stream, r])), failures: new Map(Object.entries(c.failures ?? {})) };
  const input: PlanInput = {
    epoch: 1, flag: "orchestrated", catalog, rows, instances, members: new Map(c.members.map((m) => [m.id, m])),
    policy: { imbalanceThreshold: 0.5, maxStreamDifference: 100, rebalanceAllowed: false }, requireWorker: false,
    health: { view, settings: SETTINGS, budget: c.budget ?? 20 },
  };
  const p = plan(input);
  const revoked = Object.fromEntries(p.ops.flatMap((o) => (o.op === "revoke" ? [[o.stream, { next: o.next, reason: o.reason }]] : [])));
  const put = Object.fromEntries(p.ops.flatMap((o) => (o.op === "put" ? [[o.row.stream, { owner: o.row.owner, reason: o.reason }]] : [])));
  return { p, revoked, put };
}

/** Three members each holding two streams; "a" and "b" exit in nl, "c" and "d" in br. */
const fleet = () => [
  member("a", ["1", "2"], { labels: { exit: "nl" } }),
  member("b", ["3", "4"], { labels: { exit: "nl" } }),
  member("c", ["5", "6"], { labels: { exit: "br" } }),
  member("d", [], { labels: { exit: "br" } }),
];
const owners = { "1": "a", "2": "a", "3": "b", "4": "b", "5": "c", "6": "c" };

describe("a stream failing on its worker", () => {
  it("stays while it has failed for less than STREAM_FAILOVER_AFTER", () => {
    const { p } = run({ members: fleet(), owners, records: [record("1", { failingOn: "a", failingForMs: 119_000 })] });
    expect(p.ops).toEqual([]);
    expect(p.healthOps).toEqual([]);
  });

  it("moves after STREAM_FAILOVER_AFTER (reason failing), charged to its worker, preferring another exit; nothing else moves", () => {
    const { p, revoked } = run({ members: fleet(), owners, records: [record("1", { failingOn: "a", failingForMs: 120_000, lastError: "403" })] });
    expect(revoked).toEqual({ "1": { next: "d", reason: "failing" } });
    expect(p.ops.filter((o) => o.op !== "revoke")).toEqual([]);
    expect(p.healthOps).toEqual([{ op: "charge", stream: "1", instance: "a", exit: "nl", error: "403" }]);
    expect(p.healthSpent).toBe(1);
  });

  it("never goes back to a worker it failed on within the memory", () => {
    // It failed on a (nl) before and now fails on c (br): it may go to b or d, never back to a.
    const members = [member("a", ["2"], { labels: { exit: "nl" } }), member("b", [], { labels: { exit: "nl" } }), member("c", ["1"], { labels: { exit: "br" } }), member("d", [], { labels: { exit: "br" } })];
    const { revoked } = run({ members, owners: { "1": "c", "2": "a" }, records: [record("1", { failingOn: "c", failingForMs: 200_000 })], failures: { "1": [failure("a", { exit: "nl" })] } });
    expect(revoked["1"]?.reason).toBe("failing");
    expect(["b", "d"]).toContain(revoked["1"]?.next);
  });

  it("is quarantined after STREAM_QUARANTINE_AFTER distinct workers in a row: taken off, not placed", () => {
    const { p, revoked } = run({
      members: fleet(),
      owners,
      records: [record("1", { failingOn: "a", failingForMs: 130_000 })],
      failures: { "1": [failure("c"), failure("d")] },
    });
    expect(revoked).toEqual({ "1": { next: null, reason: "quarantined" } });
    expect(p.healthOps).toContainEqual({ op: "quarantine", stream: "1", retries: 0, retryInMs: SETTINGS.quarantineRetryMs });
    expect(p.unplaced.get("1")).toBe("quarantined");
  });

  it("failures before its last success do not count towards quarantine", () => {
    const { revoked } = run({
      members: fleet(),
      owners,
      records: [record("1", { failingOn: "a", failingForMs: 130_000 })],
      failures: { "1": [failure("c", { sinceOk: false }), failure("d", { sinceOk: false })] },
    });
    expect(revoked["1"]).toEqual({ next: "b", reason: "failing" });
  });

  it("with nowhere left to try (every usable worker failed it), it is quarantined", () => {
    const members = [member("a", ["1"]), member("b", [])];
    const { revoked, p } = run({ members, owners: { "1": "a" }, records: [record("1", { failingOn: "a", failingForMs: 130_000 })], failures: { "1": [failure("b")] } });
    expect(revoked["1"]?.reason).toBe("quarantined");
    expect(p.unplaced.get("1")).toBe("quarantined");
  });
});

describe("the failure memory", () => {
  it("prefers a worker with another exit, even one with less room", () => {
    const members = [member("a", ["1"], { labels: { exit: "nl" } }), member("b", [], { labels: { exit: "nl" } }), member("d", ["7", "8"], { labels: { exit: "br" } })];
    const { revoked } = run({ members, owners: { "1": "a", "7": "d", "8": "d" }, records: [record("1", { failingOn: "a", failingForMs: 130_000 })] });
    expect(revoked["1"]).toEqual({ next: "d", reason: "failing" });
  });

  it("once its old worker let go, a moved stream is placed under another exit, not on the next worker of the same exit", () => {
    // Regression: the hand-off completed with a fresh placement that knew only the failed
    // instance, so a stream blocked on exit nl went to the other nl worker first.
    const members = [member("nl1", ["2", "3"], { labels: { exit: "nl" } }), member("nl2", ["4"], { labels: { exit: "nl" } }), member("br1", ["7", "8"], { labels: { exit: "br" } })];
    const rows = { "2": "nl1", "3": "nl1", "4": "nl2", "7": "br1", "8": "br1" };
    for (const g of ["1", "10", "11", "12", "13"]) {
      // Only nl2 is below its target: plain placement would put the stream there.
      const { put } = run({ members, owners: rows, catalog: [g, ...Object.keys(rows)].map((x) => stream(x)), failures: { [g]: [failure("nl1", { exit: "nl" })] } });
      expect(put[g]?.owner).toBe("br1");
    }
  });

  it("steers a stream away from a worker it failed on when it must be placed again", () => {
    // It failed on a, then worked on c; c is gone: it goes to b, not back to a.
    const members = [member("a", []), member("b", ["5", "6", "7"])];
    const { put } = run({ members, owners: { "5": "b", "6": "b", "7": "b" }, catalog: ["1", "5", "6", "7"].map((x) => stream(x)), failures: { "1": [failure("a", { sinceOk: false })] } });
    expect(put["1"]?.owner).toBe("b");
  });
});

describe("a quarantined stream", () => {
  it("stays off every worker until its retry is due", () => {
    const { p } = run({ members: fleet(), owners: {}, catalog: [stream("9")], records: [record("9", { quarantinedAt: "t", retryInMs: 1000 })] });
    expect(p.ops).toEqual([]);
    expect(p.unplaced.get("9")).toBe("quarantined");
  });

  it("is placed on one worker when its retry is due, preferring one it did not fail on", () => {
    const { put } = run({ members: fleet(), owners: {}, catalog: [stream("9")], records: [record("9", { quarantinedAt: "t", retryInMs: 0 })], failures: { "9": [failure("a"), failure("b"), failure("c")] } });
    expect(put["9"]?.owner).toBe("d");
  });

  it("failing on its retry goes back to quarantine with the next retry twice as far", () => {
    const { p, revoked } = run({ members: fleet(), owners: { "9": "d" }, catalog: [stream("9")], records: [record("9", { quarantinedAt: "t", retryInMs: -5, retries: 1, failingOn: "d", failingForMs: 121_000 })] });
    expect(revoked["9"]?.reason).toBe("quarantined");
    expect(p.healthOps).toContainEqual({ op: "quarantine", stream: "9", retries: 2, retryInMs: 4 * SETTINGS.quarantineRetryMs });
    expect(retryDelay(SETTINGS, 30)).toBe(SETTINGS.failureMemoryMs);
  });
});

describe("a degraded worker", () => {
  it("loses its streams (worker-degraded), its failures are not charged, and it gets no new stream", () => {
    const members = [member("a", ["1", "2"], { degraded: { reason: "failures" } }), member("b", ["3"]), member("c", [])];
    const { p, revoked, put } = run({
      members,
      owners: { "1": "a", "2": "a", "3": "b" },
      catalog: ["1", "2", "3", "4", "5"].map((s) => stream(s)),
      records: [record("1", { failingOn: "a", failingForMs: 500_000 })],
    });
    expect(Object.values(revoked).map((r) => r.reason)).toEqual(["worker-degraded", "worker-degraded"]);
    expect(Object.values(revoked).every((r) => r.next !== "a")).toBe(true);
    expect(p.healthOps).toEqual([]);
    expect(Object.values(put).some((x) => x.owner === "a")).toBe(false);
    expect(p.degraded).toEqual(new Set(["a"]));
  });

  it("when every worker is degraded nobody is treated as degraded (there is nowhere better)", () => {
    const members = [member("a", ["1"], { degraded: { reason: "rate-limited", until: "x" } }), member("b", ["2"], { degraded: { reason: "failures" } })];
    const { p } = run({ members, owners: { "1": "a", "2": "b" } });
    expect(p.ops).toEqual([]);
    expect(p.degraded.size).toBe(0);
  });
});

describe("the failover budget", () => {
  it("limits failure-driven moves per tick, oldest episode first; the rest wait", () => {
    const records = ["1", "2", "3", "4"].map((s, i) => record(s, { failingOn: s <= "2" ? "a" : "b", failingForMs: 200_000 + i * 1000 }));
    const { revoked, p } = run({ members: fleet(), owners, records, budget: 2 });
    expect(Object.keys(revoked).sort()).toEqual(["3", "4"]);
    expect(p.healthSpent).toBe(2);
  });
});

describe("labels (STREAMS_PLACEMENT_COLUMN against LABELS)", () => {
  it("a constrained stream goes only to a worker that carries its labels", () => {
    const catalog = Array.from({ length: 12 }, (_, i) => stream(`s${i}`, { exit: "br" }));
    const { put } = run({ members: fleet(), owners: {}, catalog });
    expect(new Set(Object.values(put).map((x) => x.owner))).toEqual(new Set(["c", "d"]));
  });

  it("a stream no worker matches is unassigned with reason no-matching-worker", () => {
    const { p } = run({ members: fleet(), owners: {}, catalog: [stream("x", { exit: "us" })] });
    expect(p.ops).toEqual([]);
    expect(p.unplaced.get("x")).toBe("no-matching-worker");
  });

  it("a stream on a worker that no longer matches moves to one that does", () => {
    const catalog = [stream("1", { exit: "br" }), stream("2"), stream("3"), stream("4"), stream("5"), stream("6")];
    const { revoked } = run({ members: fleet(), owners, catalog });
    expect(Object.keys(revoked)).toEqual(["1"]);
    expect(["c", "d"]).toContain(revoked["1"]!.next);
  });
});
