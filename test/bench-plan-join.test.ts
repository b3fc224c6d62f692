/**
 * `npm run bench -- --plan-join` runs the join plan benchmark (bench/plan-join.ts) on a
 * small cluster: it settles, a newcomer gets its share in two plans, in each condition,
 * under the production command's V8 flags. (Speed is reported by the benchmark, never
 * asserted.)
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { productionCommand } from "./helpers/production-command.js";

describe("npm run bench -- --plan-join", () => {
  it("plans joins first, warm and after collections, and prints their times", { timeout: 120_000 }, () => {
    const run = spawnSync("npm", ["run", "bench", "--", "--plan-join=3,6", "--plan-join-streams=90"], { cwd: path.resolve(import.meta.dirname, ".."), encoding: "utf8", timeout: 110_000 });
    expect(run.status, run.stderr).toBe(0);
    const out = run.stdout;
    // Plans run under the flags the agent runs under (the Dockerfile's CMD), said once.
    const flags = productionCommand().flags.join(" ");
    expect(flags).not.toBe("");
    expect(out).toContain(`node options: ${flags} (the production command's)`);
    for (const size of ["3 × 90", "6 × 90"]) {
      const row = out.split("\n").find((l) => l.startsWith(size));
      expect(row, out).toBeDefined();
      // The share, then three "revoke + handover" pairs of times.
      const m = new RegExp(`^${size}\\s+(\\d+)\\s+([\\d.]+ \\+ [\\d.]+\\s+){2}[\\d.]+ \\+ [\\d.]+$`).exec(row!.trim());
      expect(m, row).not.toBeNull();
      // A newcomer among n + 1 equal members receives about a (n + 1)-th of the streams.
      expect(Number(m![1])).toBeGreaterThan(0);
    }
  });
});
