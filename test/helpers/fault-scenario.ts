/**
 * Runs one seeded fault scenario on a fresh FaultCluster and judges it only from what the
 * workers recorded:
 * - zero overlap (every overlap reported with stream, workers, start, duration);
 * - no agent process ends unless the scenario killed it (a crash fails the run);
 * - every coverage gap from the first fault on within `gapBoundMs` (+ FAULT_SLACK_MS);
 * - within `convergeMs` (15 s) of the last heal, exactly one worker per stream and the
 *   cluster's GET /status and /streams/status agree with the record;
 * - with `holdMs`, the record is kept for that long after the last heal (what a resumed
 *   or restarted process does once back is watched too) and must agree again at its end.
 * On failure the message carries the seed and a compact history (events, and the interval
 * timeline of every problem stream around the faults), plus the agents' recent warnings.
 *
 * Environment: FAULT_RUNS (runs per scenario, default 1), FAULT_SEED (first seed; default
 * derived from the scenario's name), FAULT_SLACK_MS (added to every gap bound, default
 * 1000: the machine is shared and busy), FAULT_RESULTS (append one JSON line per run),
 * FAULT_HISTORY=1 (print the events and agents' decisions of passing runs too).
 */
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { FAST_TIMINGS } from "./cluster.js";
import { FaultCluster, SECONDS, type FaultClusterOptions } from "./fault-cluster.js";
import { judge } from "./served-checker.js";

export const HEARTBEAT_TIMEOUT_MS = SECONDS("HEARTBEAT_TIMEOUT");
export const LEADER_LEASE_TTL_MS = SECONDS("LEADER_LEASE_TTL");
/** The product's bounds (DESIGN §8/§9). */
export const FOLLOWER_GAP_MS = HEARTBEAT_TIMEOUT_MS + 2000;
export const LEADER_GAP_MS = HEARTBEAT_TIMEOUT_MS + 2000 + LEADER_LEASE_TTL_MS;
export const FAULT_MS = 15_000;

export interface Timeline {
  /** When the first fault was applied (gaps are counted from here). */
  readonly firstFault: number;
  /** When the last fault was healed (convergence is counted from here). */
  readonly lastHeal: number;
}

/** Private servers a scenario starts before its cluster and stops after it. */
export interface ScenarioServers {
  /** The Redis behind every agent's proxy (default: the test Redis). */
  readonly redisUrl?: string;
  stop(): Promise<void>;
}

export interface ScenarioSpec<S extends ScenarioServers = ScenarioServers> {
  readonly name: string;
  /** Longest allowed coverage gap, before slack. */
  readonly gapBoundMs: number;
  readonly overlapBoundMs?: number;
  readonly convergeMs?: number;
  /** Keep observing this long after the last heal, then require agreement again. */
  readonly holdMs?: number;
  readonly cluster?: Omit<FaultClusterOptions, "seed" | "redisUrl">;
  /** Starts the scenario's private servers (a failure fails the run: nothing is skipped). */
  servers?(): Promise<S>;
  /** Applies the faults, heals them, and says when. */
  run(fc: FaultCluster, servers: S | undefined): Promise<Timeline>;
}

export interface RunResult {
  readonly scenario: string;
  readonly seed: number;
  readonly pass: boolean;
  readonly overlaps: number;
  readonly overlapTotalMs: number;
  readonly overlapMaxMs: number;
  readonly overlapDurationsMs: number[];
  readonly overlapsBeforeFaultMs: number[];
  readonly longestGapMs: number;
  readonly gapBoundMs: number;
  readonly convergedMs: number | null;
  readonly failures: string[];
  readonly report: string;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function seedOf(name: string): number {
  let h = 2166136261;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return (h >>> 0) % 1_000_000;
}

export async function runScenario<S extends ScenarioServers>(spec: ScenarioSpec<S>, seed: number): Promise<RunResult> {
  const servers = await spec.servers?.();
  try {
    return await observe(spec, seed, servers);
  } finally {
    await servers?.stop();
  }
}

async function observe<S extends ScenarioServers>(spec: ScenarioSpec<S>, seed: number, servers: S | undefined): Promise<RunResult> {
  const slack = Number(process.env.FAULT_SLACK_MS ?? 1000);
  const bound = spec.gapBoundMs + slack;
  let fc: FaultCluster;
  try {
    fc = await FaultCluster.start({ ...spec.cluster, redisUrl: servers?.redisUrl, seed });
  } catch (err) {
    // Not a verdict on the agent: the cluster could not be set up (a loaded machine).
    if (process.env.FAULT_RESULTS) fs.appendFileSync(process.env.FAULT_RESULTS, `${JSON.stringify({ scenario: spec.name, seed, setupError: (err as Error).message, at: new Date().toISOString() })}\n`);
    throw err;
  }
  try {
    await fc.stable("every stream served once and settled before the fault");
    await fc.leader();
    fc.log.event("settled: every stream has one worker");
    const t = await spec.run(fc, servers);
    const conv = await fc.converge(t.lastHeal, spec.convergeMs ?? 15_000);
    let again: Awaited<ReturnType<FaultCluster["converge"]>> = { ms: 0 };
    if (spec.holdMs) {
      await sleep(t.lastHeal + spec.holdMs - fc.log.now());
      fc.log.event(`held ${(spec.holdMs / 1000).toFixed(0)} s after the last heal`);
      again = await fc.converge(fc.log.now(), spec.convergeMs ?? 15_000);
    }
    const end = fc.log.now();
    fc.log.event("end of observation", end);
    const v = judge(fc.log, { gapMs: bound, overlapMs: spec.overlapBoundMs ?? 0 }, t.firstFault, end);
    const failures = [...v.failures, ...fc.unexpectedExits()];
    if ("differences" in conv) failures.push(`not converged ${(spec.convergeMs ?? 15_000) / 1000} s after the last heal: ${conv.differences.slice(0, 8).join("; ")}`);
    if ("differences" in again) failures.push(`not in agreement again after holding ${spec.holdMs! / 1000} s: ${again.differences.slice(0, 8).join("; ")}`);
    const pass = failures.length === 0;
    const problem = [...new Set([...v.overlapsBeforeFault.map((o) => o.stream), ...v.overlaps.map((o) => o.stream), ...v.gapsOverBound.map((g) => g.stream)])].slice(0, 12);
    const head =
      `[faults] ${spec.name} seed ${seed}: ${pass ? "PASS" : "FAIL"}; overlaps from the first fault on ${v.overlaps.length} ` +
      `(total ${(v.overlapTotalMs / 1000).toFixed(2)} s, max ${(v.overlapMaxMs / 1000).toFixed(2)} s); ` +
      `${v.overlapsBeforeFault.length ? `${v.overlapsBeforeFault.length} more before it; ` : ""}longest gap ${((v.longestGap?.durationMs ?? 0) / 1000).toFixed(2)} s (bound ${(bound / 1000).toFixed(2)} s = ${(spec.gapBoundMs / 1000).toFixed(2)} + slack ${(slack / 1000).toFixed(2)}); ` +
      `converged ${"ms" in conv ? `${(conv.ms / 1000).toFixed(2)} s after the last heal` : "NO"}`;
    const parts = [head];
    if (pass && process.env.FAULT_HISTORY) {
      parts.push(fc.log.history({ title: spec.name }));
      for (const id of fc.ids) parts.push(`--- agent ${id} (recent warnings and decisions)\n${fc.agentLog(id, 15)}`);
    }
    if (!pass) {
      parts.push(...failures);
      const earliest = Math.min(t.firstFault - 2000, ...v.overlapsBeforeFault.map((o) => o.start - 1000));
      parts.push(fc.log.history({ title: spec.name, streams: problem, around: [earliest, end] }));
      for (const id of fc.ids) parts.push(`--- agent ${id} (recent warnings and decisions)\n${fc.agentLog(id, 15)}`);
    }
    const result: RunResult = {
      scenario: spec.name,
      seed,
      pass,
      overlaps: v.overlaps.length,
      overlapTotalMs: Math.round(v.overlapTotalMs),
      overlapMaxMs: Math.round(v.overlapMaxMs),
      overlapDurationsMs: v.overlaps.map((o) => Math.round(o.durationMs)),
      overlapsBeforeFaultMs: v.overlapsBeforeFault.map((o) => Math.round(o.durationMs)),
      longestGapMs: Math.round(v.longestGap?.durationMs ?? 0),
      gapBoundMs: bound,
      convergedMs: "ms" in conv ? Math.round(conv.ms) : null,
      failures,
      report: parts.join("\n"),
    };
    if (process.env.FAULT_RESULTS) {
      const { report: _r, ...line } = result;
      fs.appendFileSync(process.env.FAULT_RESULTS, `${JSON.stringify({ ...line, timings: FAST_TIMINGS, at: new Date().toISOString() })}\n`);
    }
    return result;
  } finally {
    await fc.close();
  }
}

/** One vitest `describe` per scenario, FAULT_RUNS seeded runs in it. */
export function describeScenario<S extends ScenarioServers>(spec: ScenarioSpec<S>): void {
  const runs = Math.max(1, Number(process.env.FAULT_RUNS ?? 1));
  const first = process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) : seedOf(spec.name);
  describe(spec.name, () => {
    for (let i = 0; i < runs; i++) {
      const seed = first + i;
      it(`seed ${seed}`, async () => {
        const r = await runScenario(spec, seed);
        // eslint-disable-next-line no-console
        console.log(r.report);
        expect(r.pass, r.report).toBe(true);
      }, 240_000);
    }
  });
}
