/**
 * The Python client for fingerv7 (clients/python) is tested with its own unittest suite,
 * which starts a real agent; this runs that suite so `npm test` covers it, exactly as
 * the README tells a person to run it: python3 -m unittest discover -s clients/python
 */
import { describe, it } from "vitest";
import { runUnittestSuite } from "./helpers/python.js";

describe("clients/python", () => {
  it("passes its unittest suite against a real agent", () => {
    runUnittestSuite("clients/python");
  }, 180_000);
});
