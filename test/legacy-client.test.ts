/**
 * The older worker API driven by a stdlib-only Python client written to the exact calls
 * today's fingerv7 build makes (test/legacy-client): its unittest suite starts real agents
 * and is run here so that `npm test` covers it, exactly as a person would run it:
 * python3 -m unittest discover -s test/legacy-client
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

describe("test/legacy-client (Python, older worker API)", () => {
  it("passes its unittest suite against real agents", () => {
    const run = spawnSync("python3", ["-m", "unittest", "discover", "-s", "test/legacy-client", "-v"], {
      cwd: ROOT,
      env: { ...process.env, NODE: process.execPath, PYTHONDONTWRITEBYTECODE: "1" },
      encoding: "utf8",
      timeout: 150_000,
    });
    if (run.error) throw new Error(`python3 is required for the older worker API's client tests: ${run.error.message}`);
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.status, output).toBe(0);
    expect(output).toMatch(/Ran [1-9]\d* tests?/);
    expect(output).toMatch(/\nOK\b/);
    // eslint-disable-next-line no-console
    for (const line of output.split("\n").filter((l) => l.startsWith("[legacy-client]"))) console.log(line);
  }, 180_000);
});
