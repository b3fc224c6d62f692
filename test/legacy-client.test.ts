/**
 * The older worker API driven by a stdlib-only Python client written to the exact calls
 * today's fingerv7 build makes (test/legacy-client): its unittest suite starts real agents
 * and is run here so that `npm test` covers it, exactly as a person would run it:
 * python3 -m unittest discover -s test/legacy-client
 */
import { describe, it } from "vitest";
import { runUnittestSuite } from "./helpers/python.js";

describe("test/legacy-client (Python, older worker API)", () => {
  it("passes its unittest suite against real agents", () => {
    const output = runUnittestSuite("test/legacy-client");
    // eslint-disable-next-line no-console
    for (const line of output.split("\n").filter((l) => l.startsWith("[legacy-client]"))) console.log(line);
  }, 180_000);
});
