/**
 * The Python client for fingerv7 (clients/python) is tested with its own unittest suite,
 * which starts a real agent; this runs that suite so `npm test` covers it, exactly as
 * the README tells a person to run it: python3 -m unittest discover -s clients/python
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

describe("clients/python", () => {
  it("passes its unittest suite against a real agent", () => {
    const run = spawnSync("python3", ["-m", "unittest", "discover", "-s", "clients/python", "-v"], {
      cwd: ROOT,
      env: { ...process.env, NODE: process.execPath, PYTHONDONTWRITEBYTECODE: "1" },
      encoding: "utf8",
      timeout: 150_000,
    });
    if (run.error) throw new Error(`python3 is required for the Python client's tests: ${run.error.message}`);
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.status, output).toBe(0);
    expect(output).toMatch(/Ran \d+ tests/);
    expect(output).toMatch(/\nOK\b/);
  }, 180_000);
});
