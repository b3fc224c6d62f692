/**
 * A new leader's slow start is progress, not a stall: winning the epoch counts
 * (leader/stall.ts), so an epoch win and a first tick that together outlast
 * LEADER_LEASE_TTL — each within it — keep the leader (regression: under load the first
 * leader stepped aside as "stalled" right after winning, costing a whole election).
 * So does each completed stage of a tick (read, write, bookkeeping), so a tick slowed
 * down as a whole by a starved CPU keeps the leader, and each completed statement of the
 * fenced write (the real write stage, wired to the store's progress and the term's
 * signal), so a large write in batches does too. A tick, a stage or a statement that
 * alone outlasts the limit still steps aside, and no statement follows the term's end. The watch's timer is stopped when the work
 * ends: a tick that ends in time leaves nothing to fire.
 */
import { describe, expect, it } from "vitest";
import { LeaderLoop } from "../../leader/leader.js";
import { ManualClock } from "../../shared/clock.js";
import { loadConfig } from "../../shared/config.js";
import { silentLogger } from "../../shared/logger.js";
import type { Snapshot } from "../../shared/membership.js";
import type { Plan } from "../../shared/placement/plan.js";
import { Metrics } from "../../shared/metrics.js";
import { StallWatch } from "../../leader/stall.js";
import { EpochMovedError } from "../../leader/store.js";

const TTL_S = 4;
const STALL_MS = TTL_S * 1000;

/** Another member, live, that reaches PostgreSQL: the condition for stepping aside. */
const snapshot = (at: number): Snapshot =>
  ({
    at,
    members: new Map([["peer", { id: "peer", status: "alive", hb: { pgOk: true } }]]),
    leader: undefined,
    flag: undefined,
    incarnation: "i",
    viewVersion: 1,
    viewGrewAt: 0,
    channels: { redis: true, postgres: true },
  }) as unknown as Snapshot;

/** A plan that puts one stream on the peer: enough for the write stage to write. */
const onePut = {
  ops: [{ op: "put", from: undefined, reason: "join", row: { stream: "s1", owner: "peer" } }],
  bump: new Set<string>(),
  statuses: new Map(),
  result: { moves: [], rebalanced: false, targets: new Map(), unassigned: [] },
  pool: [],
  loadBefore: {},
  waiting: [],
  unplaced: new Map(),
} as unknown as Plan;

/**
 * Runs a leader whose epoch win takes `epochMs` and whose every tick takes `tickMs`, or,
 * with `stagesMs`, whose ticks run their three stages (read, write, bookkeeping) taking
 * those times each.
 */
async function run(
  epochMs: number,
  tickMs: number,
  stagesMs?: readonly [number, number, number],
  abortAfterMs?: number,
  o: { epochMovedTimes?: number; leaseEndsAt?: number; statementsMs?: readonly number[] } = {},
) {
  let epochMovedTimes = o.epochMovedTimes ?? 0;
  const clock = new ManualClock(10_000);
  const stalled: string[] = [];
  const history: string[] = [];
  let ticks = 0;
  let ticksBeforeStall: number | undefined;
  const leader = new LeaderLoop({
    id: "me",
    config: loadConfig({ LEADER_LEASE_TTL: String(TTL_S) }),
    clock,
    logger: silentLogger(),
    protocol: {
      publishLeader: async () => {},
      publishNudge: async () => {},
      publishMode: async () => {},
      publishVersions: async () => {},
      clearLeader: async () => {},
    } as never,
    tracker: { latest: snapshot(clock.now()), watch: () => {} } as never,
    store: {
      currentEpoch: async () => 6,
      bumpEpoch: async (_id: string, seen: number) => {
        history.push(`epoch win starts at ${clock.now()}`);
        await clock.sleep(epochMs);
        if (epochMovedTimes-- > 0) {
          history.push(`epoch moved at ${clock.now()}`);
          throw new EpochMovedError(seen);
        }
        history.push(`epoch won at ${clock.now()}`);
        return seen + 1;
      },
      lastRebalanceAgoMs: async () => null,
      recordRedis: async () => {},
      // With statementsMs: a fenced write of that many statements, each taking its time,
      // reported as the store reports them (leader/store.ts WriteOptions).
      apply: async (...args: unknown[]) => {
        const w = args[6] as { progress?: () => void; signal?: AbortSignal } | undefined;
        for (const [i, ms] of (o.statementsMs ?? []).entries()) {
          if (w?.signal?.aborted) {
            history.push(`statement ${i + 1} not sent at ${clock.now()}: the term ended`);
            throw w.signal.reason;
          }
          history.push(`statement ${i + 1} starts at ${clock.now()}`);
          await clock.sleep(ms);
          history.push(`statement ${i + 1} done at ${clock.now()}`);
          w?.progress?.();
        }
        return new Map();
      },
    } as never,
    catalog: {} as never,
    legacy: {} as never,
    metrics: new Metrics({ instance: "me" }),
    isLeader: () => clock.now() < (o.leaseEndsAt ?? Infinity),
    leaseToken: () => "token",
    onFenced: () => void history.push(`fenced at ${clock.now()}`),
    onStalled: (why) => {
      history.push(`stepped aside at ${clock.now()}: ${why}`);
      stalled.push(why);
      ticksBeforeStall ??= ticks;
    },
    forgetHeartbeats: async () => {},
    requireWorker: false,
    health: { idle: async () => {} } as never,
  });
  // The tick's insides are not under test: only how long it (or each stage) takes.
  const stage = (name: string, ms: number) => async () => {
    history.push(`${name} starts at ${clock.now()}`);
    await clock.sleep(ms);
    if (name === "bookkeeping") ticks++;
    history.push(`${name} done at ${clock.now()}`);
    return {};
  };
  const inside = leader as unknown as Record<"tick" | "read" | "write" | "bookkeep", () => Promise<unknown>>;
  if (o.statementsMs) {
    // The real write stage (plan, fenced write, publish) around a plan with one move.
    const state = { rows: new Map(), rowsVersion: 1, flag: { mode: "orchestrated", version: 1 }, instances: new Map() };
    inside.read = async () => ({ snapshot: snapshot(clock.now()), state, catalog: [], legacy: new Map(), health: {} });
    leader.memo.plan = () => onePut;
    inside.bookkeep = stage("bookkeeping", 0);
  } else if (stagesMs) {
    inside.read = stage("read", stagesMs[0]);
    inside.write = stage("write", stagesMs[1]);
    inside.bookkeep = stage("bookkeeping", stagesMs[2]);
  } else {
    inside.tick = async () => {
      history.push(`tick starts at ${clock.now()}`);
      await clock.sleep(tickMs);
      ticks++;
      history.push(`tick done at ${clock.now()}`);
    };
  }
  const ctl = new AbortController();
  const done = leader.run(ctl.signal);
  const tickTotal = o.statementsMs ? o.statementsMs.reduce((a, b) => a + b, 0) : stagesMs ? stagesMs[0] + stagesMs[1] + stagesMs[2] : tickMs;
  const until = abortAfterMs ?? epochMs + 2 * tickTotal + 2 * STALL_MS;
  for (let t = 0; t < until && stalled.length === 0; t += 50) await clock.advance(50);
  history.push(`leadership ends at ${clock.now()}${leader.status.lastError ? ` (last error: ${leader.status.lastError})` : ""}`);
  ctl.abort();
  let returned = false;
  void done.then(() => {
    returned = true;
    history.push(`run returned at ${clock.now()}`);
  });
  for (let t = 0; t < 2 * STALL_MS + tickTotal && !returned; t += 50) await clock.advance(50);
  await done;
  return { stalled, ticks, ticksBeforeStall, history };
}

describe("the end of a term (leader/leader.ts run)", () => {
  it("lets the step in flight finish before run() returns: nothing of the term uses the stores after it", async () => {
    // Regression: run() returned at once, the agent closed its PostgreSQL pool, and the
    // cut-short tick's bookkeeping then failed on the closed connection.
    // A 3 s tick from 0.25 s; leadership ends at 0.8 s, in the middle of it.
    const r = await run(0, 0.75 * STALL_MS, undefined, 800);
    const at = (what: string) => r.history.findIndex((h) => h.startsWith(what));
    expect(at("leadership ends"), r.history.join("\n")).toBeLessThan(at("tick done"));
    expect(at("run returned"), r.history.join("\n")).toBeGreaterThan(at("tick done"));
  });
});

describe("winning the epoch (leader/store.ts bumpEpoch, a compare-and-set)", () => {
  it("reads again and retries at once when the epoch moved before its bump, and leads without stepping down", async () => {
    // A late bump of an earlier term landed between this leader's read and its bump.
    const r = await run(100, 100, undefined, 1_500, { epochMovedTimes: 2 });
    const h = r.history.join("\n");
    expect(r.history.filter((x) => x.startsWith("epoch moved")), h).toHaveLength(2);
    expect(r.history.some((x) => x.startsWith("fenced")), h).toBe(false);
    expect(r.stalled, h).toEqual([]);
    // Each retry follows within the nudge's coalescing (20 ms), not a whole tick interval.
    const at = (what: string) => Number(r.history.find((x) => x.startsWith(what))?.split(" ").at(-1));
    expect(at("epoch won at") - at("epoch win starts at"), h).toBeLessThanOrEqual(3 * 100 + 2 * 50);
    expect(r.ticks, h).toBeGreaterThanOrEqual(1);
  });

  it("does not bump again once its lease has run out by its own clock", async () => {
    // The first bump finds the epoch moved at 10,550; the lease ended at 10,500 (its timer
    // not yet run): a second bump would take the epoch from whoever holds the lease now.
    const r = await run(100, 100, undefined, 1_000, { epochMovedTimes: 1, leaseEndsAt: 10_500 });
    const h = r.history.join("\n");
    expect(r.history.filter((x) => x.startsWith("epoch win starts")), h).toHaveLength(1);
    expect(r.history.some((x) => x.startsWith("epoch won")), h).toBe(false);
  });
});

describe("a leader's stall watch (leader/stall.ts) over its first term", () => {
  it("counts the epoch win as progress: a slow win plus a slow first tick keeps the leader", async () => {
    const r = await run(0.7 * STALL_MS, 0.7 * STALL_MS);
    expect(r.stalled, r.history.join("\n")).toEqual([]);
    expect(r.ticks, r.history.join("\n")).toBeGreaterThanOrEqual(2);
  });

  it("still steps aside when one tick alone outlasts the limit while a peer reaches PostgreSQL", async () => {
    const r = await run(0, 1.5 * STALL_MS);
    expect(r.stalled.length, r.history.join("\n")).toBe(1);
    // It stepped aside while the tick still ran (the tick may end after, before run() returns).
    expect(r.ticksBeforeStall, r.history.join("\n")).toBe(0);
  });

  it("counts each completed stage of a tick as progress: a tick slowed down stage by stage (a starved CPU) keeps the leader", async () => {
    // Each stage within the limit, the whole tick well beyond it (regression: at a cold
    // start on a busy machine the first leaders stepped aside one after another mid-tick).
    const r = await run(0.5 * STALL_MS, 0, [0.7 * STALL_MS, 0.7 * STALL_MS, 0.7 * STALL_MS]);
    expect(r.stalled, r.history.join("\n")).toEqual([]);
    expect(r.ticks, r.history.join("\n")).toBeGreaterThanOrEqual(2);
  });

  it("still steps aside when one stage alone outlasts the limit while a peer reaches PostgreSQL", async () => {
    const r = await run(0, 0, [0.2 * STALL_MS, 1.5 * STALL_MS, 0]);
    expect(r.stalled.length, r.history.join("\n")).toBe(1);
    expect(r.ticksBeforeStall, r.history.join("\n")).toBe(0);
  });

  it("counts each completed statement of the fenced write as progress: a large write (a cold start's moves in batches) keeps the leader", async () => {
    // Four statements of 0.7 × the limit each: the write as a whole lasts 2.8 × the limit
    // (regression: a cold start's 75,000 moves outlasted LEADER_LEASE_TTL and the first
    // leaders stepped aside one after another).
    const r = await run(0, 0, undefined, undefined, { statementsMs: [0.7 * STALL_MS, 0.7 * STALL_MS, 0.7 * STALL_MS, 0.7 * STALL_MS] });
    const h = r.history.join("\n");
    expect(r.stalled, h).toEqual([]);
    expect(r.history.filter((x) => x.startsWith("statement 4 done")).length, h).toBeGreaterThanOrEqual(1);
    expect(r.ticks, h).toBeGreaterThanOrEqual(2);
  });

  it("still steps aside when one statement alone outlasts the limit, and sends no further statement once the term ended", async () => {
    const r = await run(0, 0, undefined, undefined, { statementsMs: [0.2 * STALL_MS, 1.5 * STALL_MS, 0.2 * STALL_MS] });
    const h = r.history.join("\n");
    expect(r.stalled.length, h).toBe(1);
    expect(r.ticksBeforeStall, h).toBe(0);
    expect(r.history.some((x) => x.startsWith("statement 3 not sent")), h).toBe(true);
    expect(r.history.some((x) => x.startsWith("statement 3 starts")), h).toBe(false);
  });
});

describe("the stall watch's timer (leader/stall.ts await)", () => {
  /** A manual clock that counts the sleeps still pending (not ended, not aborted). */
  function countingClock() {
    const clock = new ManualClock(10_000);
    let pending = 0;
    const sleep = clock.sleep.bind(clock);
    clock.sleep = (ms: number, signal?: AbortSignal) => {
      pending++;
      return sleep(ms, signal).finally(() => pending--);
    };
    return { clock, pending: () => pending };
  }

  it("leaves no timer behind when the work ends in time, and steps aside at the limit from the last progress, not before", async () => {
    const { clock, pending } = countingClock();
    const stalled: number[] = [];
    const watch = new StallWatch({
      id: "me",
      clock,
      logger: silentLogger(),
      stallMs: STALL_MS,
      membership: () => snapshot(clock.now()),
      lastError: () => undefined,
      onStalled: () => stalled.push(clock.now()),
    });
    watch.progressed();
    const progressAt = clock.now();
    // A tick of 10 ms: once it ended, no sleep of the watch is left to fire.
    const quick = watch.await(clock.sleep(10).then(() => "ok"), new AbortController().signal);
    await clock.advance(10);
    expect(await quick).toBe("ok");
    expect(pending()).toBe(0);
    // A hung tick: checked at the limit from the last progress, not before.
    await clock.advance(1000);
    const hung = watch.await(new Promise<string>(() => {}), new AbortController().signal);
    for (let t = 0; t < STALL_MS && stalled.length === 0; t += 50) await clock.advance(50);
    expect(await hung).toBe("stalled");
    expect(stalled).toEqual([progressAt + STALL_MS]);
  });
});
