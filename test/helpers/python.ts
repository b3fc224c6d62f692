/**
 * Runs one of the repository's Python unittest suites the way a person runs it
 * (`python3 -m unittest discover -s DIR -v`, from the repository root) and fails the
 * calling test with the whole output unless every test ran and passed. The suites find
 * their shared helper (test/pyhelpers) themselves, so no PYTHONPATH is needed.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Returns the suite's output (stdout, then stderr). */
export function runUnittestSuite(dir: string, timeoutMs = 150_000): string {
  const run = spawnSync("python3", ["-m", "unittest", "discover", "-s", dir, "-v"], {
    cwd: ROOT,
    env: { ...process.env, NODE: process.execPath, PYTHONDONTWRITEBYTECODE: "1" },
    encoding: "utf8",
    timeout: timeoutMs,
  });
  if (run.error) throw new Error(`python3 is required for the tests in ${dir}: ${run.error.message}`);
  const output = `${run.stdout}\n${run.stderr}`;
  expect(run.status, output).toBe(0);
  expect(output).toMatch(/Ran [1-9]\d* tests?/);
  expect(output).toMatch(/\nOK\b/);
  return output;
}
