/**
 * `npm run bench -- --tick` runs the leader tick benchmark (bench/leader-tick.ts) on a
 * small fleet: the members reach an even cover, steady ticks reuse their plan, and a
 * member that joins gets its share. (Speed is reported by the benchmark, never asserted.)
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

describe("npm run bench -- --tick", () => {
  it("covers, reuses the steady plan and places a newcomer", { timeout: 150_000 }, () => {
    const run = spawnSync("npm", ["run", "bench", "--", "--tick=4", "--tick-streams=200"], { cwd: path.resolve(import.meta.dirname, ".."), encoding: "utf8", timeout: 140_000 });
    expect(run.status, run.stderr).toBe(0);
    const out = run.stdout;
    expect(out).toMatch(/4 members × 200 streams: cover [\d.]+ s/);
    const line = out.split("\n").find((l) => l.includes("steady tick"));
    expect(line, out).toBeDefined();
    // Every steady tick but none reused its plan would mean the memo never holds.
    const [, reused, total] = /(\d+) of (\d+) plans reused/.exec(line!) ?? [];
    expect(Number(total)).toBeGreaterThan(0);
    expect(Number(reused)).toBeGreaterThan(0);
    expect(line).toMatch(/join: leader's side [\d.]+ ms \(ticks \d+, reads [\d.]+, plan [\d.]+, write [\d.]+, rest -?[\d.]+, between -?[\d.]+\), end to end [\d.]+ ms/);
    expect(line).not.toMatch(/did not get its share|leader error|fenced|stalled/);
  });
});
