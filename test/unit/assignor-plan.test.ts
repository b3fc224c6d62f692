/**
 * The assignor inside the leader's plan, over several ticks of a simulated cluster (pure:
 * rows, versions and heartbeats are kept in memory the way LeaderStore and the agents
 * keep them). A capacity change at run time (a heartbeat reporting a new MAX_STREAMS)
 * moves only the excess; a drain hands off with its reason kept from the revoke to the
 * final assignment; nothing moves once settled.
 */
import { describe, expect, it } from "vitest";
import type { AssignPolicy } from "../../shared/placement/assignor.js";
import { plan, type InstanceRow, type Row } from "../../shared/placement/plan.js";
import type { MemberView } from "../../shared/membership.js";
import type { Heartbeat, Stream } from "../../shared/types.js";

interface SimMember {
  capacity: number;
  draining: boolean;
  version: number;
}

const POLICY: AssignPolicy = { imbalanceThreshold: 0.15, maxStreamDifference: 3, rebalanceAllowed: true };

class SimCluster {
  readonly rows = new Map<string, Row>();
  readonly members = new Map<string, SimMember>();
  /** Every owner change the ticks made: [stream, from, to, reason]. */
  readonly log: [string, string | null, string | null, string][] = [];
  constructor(
    readonly catalog: Stream[],
    ids: string[],
    capacity: number,
  ) {
    for (const id of ids) this.members.set(id, { capacity, draining: false, version: 0 });
  }

  private views(): Map<string, MemberView> {
    const out = new Map<string, MemberView>();
    for (const [id, m] of this.members) {
      // An agent holds exactly its active rows of the version it has loaded.
      const held = [...this.rows.values()].filter((r) => r.owner === id && r.state === "active").map((r) => r.stream);
      const hb: Heartbeat = {
        id, seq: 1, session: "s", capacity: m.capacity, draining: m.draining, mode: "orchestrated", useOrchestrator: true,
        version: m.version, held, leaving: false, restarting: false,
        worker: { ok: true, lastSeenMsAgo: 0, processed: 0, errors: 0, kind: "v1" }, startedAt: "", host: "", location: "", software: "",
      };
      out.set(id, { id, hb, present: true, status: "alive", silentMs: 0, firstSeenAt: 0 });
    }
    return out;
  }

  /** One leader tick, applied as LeaderStore.apply would. Returns the number of row operations. */
  tick(policy: AssignPolicy = POLICY): number {
    const instances = new Map<string, InstanceRow>([...this.members].map(([id, m]) => [id, { id, draining: m.draining, version: m.version, epoch: 1, status: "active" }]));
    const p = plan({ epoch: 1, flag: "orchestrated", catalog: this.catalog, rows: this.rows, instances, members: this.views(), policy, requireWorker: false });
    for (const id of p.bump) this.members.get(id)!.version++;
    for (const op of p.ops) {
      if (op.op === "put") {
        const before = this.rows.get(op.row.stream);
        if (before?.owner !== op.row.owner) this.log.push([op.row.stream, op.from, op.row.owner, op.reason]);
        this.rows.set(op.row.stream, op.row);
      } else if (op.op === "revoke") {
        const r = this.rows.get(op.stream)!;
        this.rows.set(op.stream, { ...r, state: "revoking", next: op.next, reason: op.reason, revokeVersion: this.members.get(op.owner)!.version });
      } else if (op.op === "retarget") {
        this.rows.set(op.stream, { ...this.rows.get(op.stream)!, next: op.next });
      } else {
        this.log.push([op.stream, op.owner, null, op.reason]);
        this.rows.delete(op.stream);
      }
    }
    return p.ops.length;
  }

  settle(policy: AssignPolicy = POLICY): void {
    for (let i = 0; i < 20; i++) if (this.tick(policy) === 0) return;
    throw new Error("the plan did not settle in 20 ticks");
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = Object.fromEntries([...this.members.keys()].map((id) => [id, 0]));
    for (const r of this.rows.values()) if (r.state === "active") out[r.owner]!++;
    return out;
  }

  owners(): Map<string, string> {
    return new Map([...this.rows.values()].map((r) => [r.stream, r.owner]));
  }
}

const catalog = (n: number): Stream[] => Array.from({ length: n }, (_, i) => ({ id: String(i + 1), url: `http://radio.example.invalid/${i + 1}`, name: `Stream ${i + 1}`, metadata: {} }));

describe("the assignor in the leader's plan", () => {
  it("honours a capacity change at run time: only the excess moves, with reason capacity", () => {
    const c = new SimCluster(catalog(60), ["a1", "a2", "a3"], 30);
    c.settle();
    expect(c.counts()).toEqual({ a1: 20, a2: 20, a3: 20 });
    const before = c.owners();
    c.log.length = 0;

    c.members.get("a1")!.capacity = 5; // its heartbeat now reports MAX_STREAMS = 5
    c.settle({ ...POLICY, rebalanceReason: "capacity" });
    const shrunk = c.counts();
    expect(shrunk.a1).toBe(5);
    expect([shrunk.a2, shrunk.a3].sort()).toEqual([27, 28]); // 55 over capacities 30 / 30
    const after = c.owners();
    const moved = [...before].filter(([s, o]) => after.get(s) !== o);
    expect(moved.length).toBe(15);
    for (const [, o] of moved) expect(o).toBe("a1");
    for (const [, from, to, reason] of c.log) expect({ from, to: to === null ? null : "x", reason }).toEqual({ from: "a1", to: "x", reason: "capacity" });

    c.log.length = 0;
    c.members.get("a1")!.capacity = 30; // and back: a fair share again
    c.settle({ ...POLICY, rebalanceReason: "capacity" });
    expect(c.counts()).toEqual({ a1: 20, a2: 20, a3: 20 });
    expect(c.log.length).toBe(15);
    for (const [, , to, reason] of c.log) expect([to, reason]).toEqual(["a1", "capacity"]);
  });

  it("keeps a drain's reason from the revoke to the new owner, and settles to a fixed point", () => {
    const c = new SimCluster(catalog(30), ["a1", "a2", "a3"], 20);
    c.settle();
    c.log.length = 0;
    c.members.get("a2")!.draining = true;
    c.settle({ ...POLICY, rebalanceAllowed: false });
    expect(c.counts()).toEqual({ a1: 15, a2: 0, a3: 15 });
    expect(c.log.length).toBe(10);
    for (const [, from, to, reason] of c.log) {
      expect(from).toBe("a2");
      expect(["a1", "a3"]).toContain(to);
      expect(reason).toBe("drain");
    }
    expect(c.tick()).toBe(0);
  });
});
