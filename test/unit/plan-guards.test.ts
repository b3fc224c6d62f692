/**
 * Guards in the plan.
 * A member cut from PostgreSQL (its heartbeats there failing for half a HEARTBEAT_TIMEOUT)
 * cannot read rows given to it: the plan gives it nothing and leaves what it holds alone
 * (a revocation it cannot read would only block the streams), so nothing goes unserved.
 * Regression: the leader gave a dead member's streams to a member that could not read
 * them, and they went unserved until PostgreSQL came back.
 * With hashing members in the cluster, free streams wait until the view has settled:
 * while views differ a hashing agent may take the same stream by its own hash. What the
 * hashing members own is predicted by the agents' own function over what everyone holds,
 * so a settled mixed fleet has nothing to move.
 */
import { describe, expect, it } from "vitest";
import { assign } from "../../shared/placement/assignor.js";
import { plan, type InstanceRow, type Row } from "../../shared/placement/plan.js";
import type { MemberView } from "../../shared/membership.js";
import type { Heartbeat, Stream } from "../../shared/types.js";

const stream = (id: string): Stream => ({ id, url: `u${id}`, name: id, metadata: {} });
const row = (s: string, owner: string): Row => ({ stream: s, owner, state: "active", next: null, revokeVersion: null, reason: "catalog", url: `u${s}`, name: s, metadata: {} });

function member(id: string, held: string[], pgCut = false): MemberView {
  const hb: Heartbeat = {
    id, seq: 1, session: "s", capacity: 20, draining: false, mode: "orchestrated", useOrchestrator: true, version: 1, held, leaving: false, restarting: false,
    worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "", host: "", location: "", software: "", pgCut,
  };
  return { id, hb, present: true, status: "alive", silentMs: 0, firstSeenAt: 0 };
}

describe("a member cut from PostgreSQL", () => {
  it("gets no new streams and keeps what it holds; the rest goes to the others", () => {
    const aIds = ["1", "2", "3", "4", "5"];
    const bIds = ["6", "7", "8", "9", "10"];
    const rows = new Map<string, Row>([...aIds.map((s) => [s, row(s, "a")] as const), ...bIds.map((s) => [s, row(s, "b")] as const)]);
    const instances = new Map<string, InstanceRow>(["a", "b"].map((id) => [id, { id, draining: false, version: 1, epoch: 1, status: "active" }]));
    const members = new Map([["a", member("a", aIds, true)], ["b", member("b", bIds)]]);
    const catalog = Array.from({ length: 12 }, (_, i) => stream(String(i + 1)));
    const p = plan({ epoch: 1, flag: "orchestrated", catalog, rows, instances, members, policy: { imbalanceThreshold: 0.15, maxStreamDifference: 3, rebalanceAllowed: true }, requireWorker: false });
    const puts = p.ops.filter((o) => o.op === "put");
    expect(puts.map((o) => (o.op === "put" ? o.row.owner : "")).every((owner) => owner === "b")).toBe(true);
    expect(puts.map((o) => (o.op === "put" ? o.row.stream : "")).sort()).toEqual(["11", "12"]);
    // a's rows are left exactly as they are: no revoke, no move.
    expect(p.ops.filter((o) => o.op !== "put")).toEqual([]);
    expect(puts.some((o) => o.op === "put" && aIds.includes(o.row.stream))).toBe(false);
  });
});

describe("with hashing members in the cluster", () => {
  it("a free stream is placed only once the membership view has settled (HASH_SETTLE)", () => {
    const hashing = member("h", []);
    const h = { ...hashing, hb: { ...hashing.hb!, mode: "hashed" as const, useOrchestrator: false } };
    const members = new Map([["a", member("a", [])], ["h", h]]);
    const instances = new Map<string, InstanceRow>([["a", { id: "a", draining: false, version: 1, epoch: 1, status: "active" }]]);
    const catalog = Array.from({ length: 20 }, (_, i) => stream(String(i + 1)));
    const input = { epoch: 1, flag: "orchestrated" as const, catalog, rows: new Map<string, Row>(), instances, members, policy: { imbalanceThreshold: 0.15, maxStreamDifference: 3, rebalanceAllowed: true }, requireWorker: false };
    const unsettled = plan({ ...input, hashSettled: false });
    expect(unsettled.ops.filter((o) => o.op === "put")).toEqual([]);
    expect(unsettled.waiting.length).toBeGreaterThan(0);
    const settled = plan({ ...input, hashSettled: true });
    expect(settled.ops.filter((o) => o.op === "put").length).toBe(unsettled.waiting.length);
  });
});

describe("a mixed fleet (a member pinned to hashing) that has settled", () => {
  it("the leader predicts exactly what the hashing member holds as its own, and moves nothing", () => {
    const catalog = Array.from({ length: 30 }, (_, i) => stream(String(i + 1)));
    // The settled placement: what the leader's assignor gives a, b and h (capacity 20 each).
    const settled = assign({ streams: catalog.map((s) => s.id), members: ["a", "b", "h"].map((id) => ({ id, capacity: 20, draining: false })), current: new Map(), policy: { imbalanceThreshold: 0.15, maxStreamDifference: 3, rebalanceAllowed: true, force: true } }).assignment;
    const held = (id: string) => [...settled].filter(([, o]) => o === id).map(([s]) => s);
    const hashing = member("h", held("h"));
    const members = new Map([["a", member("a", held("a"))], ["b", member("b", held("b"))], ["h", { ...hashing, hb: { ...hashing.hb!, mode: "hashed" as const, useOrchestrator: false } }]]);
    const rows = new Map<string, Row>([...held("a").map((s) => [s, row(s, "a")] as const), ...held("b").map((s) => [s, row(s, "b")] as const)]);
    const instances = new Map<string, InstanceRow>(["a", "b"].map((id) => [id, { id, draining: false, version: 1, epoch: 1, status: "active" }]));
    const p = plan({ epoch: 1, flag: "orchestrated", catalog, rows, instances, members, policy: { imbalanceThreshold: 0.15, maxStreamDifference: 3, rebalanceAllowed: true }, requireWorker: false, hashSettled: true });
    expect(p.hashedMembers).toEqual(new Set(["h"]));
    expect(p.hashedOwned).toBe(held("h").length);
    expect(p.ops).toEqual([]);
    expect(p.waiting).toEqual([]);
  });
});
