/**
 * `npm run bench` works from a clean clone and its non-timing results hold: the assignor
 * moves no more than the minimum and keeps every member within one stream of its share;
 * the fleet benchmark runs a small fleet over two processes to full coverage and reports
 * every measure; the agent-process benchmark builds dist/ if needed, starts real agents to
 * an even cover and reports their start, memory and CPU.
 * (Speed and cost are reported by the benchmark, never asserted here.)
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Figures } from "../bench/agents.js";

interface EventResult {
  moves: number;
  minimum: number;
  maxDeviation: number;
  unassigned: number;
  overCapacity: number;
}

describe("npm run bench -- --quick", () => {
  it("runs and reports the assignor at the minimum number of moves, within ±1 of every target", { timeout: 180_000 }, () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bench-")), "bench.json");
    const run = spawnSync("npm", ["run", "bench", "--", "--quick", "--json", file], { cwd: path.resolve(import.meta.dirname, ".."), encoding: "utf8", timeout: 170_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/moves ÷ minimum|join/i);
    const report = JSON.parse(fs.readFileSync(file, "utf8")) as {
      movement: { results: { strategy: string; initial: { maxDeviation: number; unassigned: number; overCapacity: number }; events: Record<string, EventResult> }[] }[];
    };
    expect(report.movement.length).toBeGreaterThan(0);
    for (const size of report.movement) {
      const a = size.results.find((r) => r.strategy === "assignor")!;
      expect(a.initial.unassigned).toBe(0);
      expect(a.initial.overCapacity).toBe(0);
      expect(a.initial.maxDeviation).toBeLessThan(1);
      for (const [event, r] of Object.entries(a.events)) {
        expect(r.moves, event).toBeLessThanOrEqual(Math.ceil(1.01 * r.minimum));
        expect(r.maxDeviation, event).toBeLessThan(1);
        expect(r.unassigned, event).toBe(0);
        expect(r.overCapacity, event).toBe(0);
      }
    }
  });
});

describe("npm run bench -- --fleet", () => {
  it("runs a small fleet over two processes to full coverage and reports every measure", { timeout: 120_000 }, () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bench-")), "fleet.json");
    const run = spawnSync("npm", ["run", "bench", "--", "--fleet=4", "--fleet-streams=200", "--fleet-interval=0.5", "--fleet-timeout=30", "--fleet-processes=2", "--json", file], {
      cwd: path.resolve(import.meta.dirname, ".."),
      encoding: "utf8",
      timeout: 110_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Fleet/);
    const report = JSON.parse(fs.readFileSync(file, "utf8")) as { movement: unknown[]; fleet: Record<string, unknown>[] };
    expect(report.movement).toEqual([]);
    expect(report.fleet).toHaveLength(1);
    const r = report.fleet[0]!;
    expect(r).toMatchObject({ agents: 4, streams: 200, processes: 2, note: "" });
    expect(r.coverageS).toEqual(expect.any(Number));
    for (const k of ["redisCommandsPerAgentPerInterval", "pgStatementsPerS", "rssPerAgentMB", "cpuPerAgentPct", "tickSteadyMs", "tickJoinMs", "joinEndToEndMs"]) expect(r[k], k).toEqual(expect.any(Number));
    expect(r.cpuPerAgentPct as number).toBeGreaterThan(0);
    expect(r.redisCommandsPerAgentPerInterval as number).toBeGreaterThan(0);
    expect(["pg_stat_statements", "xact_commit"]).toContain(r.pgSource);
  });
});

describe("npm run bench -- --agents", () => {
  it("starts real agent processes to an even cover and reports their start, memory and CPU", { timeout: 240_000 }, () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bench-")), "agents.json");
    const run = spawnSync("npm", ["run", "bench", "--", "--agents=2", "--agents-streams=40", "--agents-settle=1", "--agents-idle=2", "--agents-timeout=90", "--json", file], {
      cwd: path.resolve(import.meta.dirname, ".."),
      encoding: "utf8",
      timeout: 230_000,
    });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Agent processes/);
    const report = JSON.parse(fs.readFileSync(file, "utf8")) as { movement: unknown[]; agents: Record<string, unknown> & { leader: Figures; followers: { median: Figures } } };
    expect(report.movement).toEqual([]);
    const r = report.agents;
    expect(r).toMatchObject({ agents: 2, streams: 40 });
    // The cover was reached, every process stayed up and a leader was named. (A worker seen
    // between two long-poll answers on a loaded machine may show the cover uneven at the
    // last sample: that is reported in the note, not failed here.)
    expect(r.note).not.toMatch(/no even cover|exited|no leader/);
    for (const k of ["allAnsweredS", "leaderReadyS", "firstServedS", "allServedS", "coverS", "startCpuS"]) expect(r[k], k).toEqual(expect.any(Number));
    for (const x of [r.leader, r.followers.median]) {
      expect(x.rssMB).toBeGreaterThan(x.anonMB);
      expect(x.anonMB).toBeGreaterThan(0);
      expect(x.cpuPct).toBeGreaterThanOrEqual(0);
    }
  });
});
