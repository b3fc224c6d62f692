/**
 * The clocks' sleeps (shared/clock.ts): a sleep that ends, by time or by its signal, leaves
 * no listener on the signal, so a loop's long-lived signal does not collect one per sleep
 * (regression: the manual clock left every listener behind, and tests whose loops slept
 * more than ten times on one signal printed MaxListenersExceededWarning); an abort still
 * ends a pending sleep at once.
 */
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { ManualClock, systemClock } from "../../shared/clock.js";

describe("a sleep on a long-lived signal", () => {
  it("manual clock: leaves no listener behind once time ends it, and an abort still ends a pending one", async () => {
    const clock = new ManualClock(0);
    const ctl = new AbortController();
    for (let i = 0; i < 20; i++) {
      const slept = clock.sleep(10, ctl.signal);
      await clock.advance(10);
      await slept;
    }
    expect(getEventListeners(ctl.signal, "abort")).toHaveLength(0);
    const pending = clock.sleep(1_000, ctl.signal);
    expect(getEventListeners(ctl.signal, "abort")).toHaveLength(1);
    ctl.abort();
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    expect(getEventListeners(ctl.signal, "abort")).toHaveLength(0);
  });

  it("system clock: leaves no listener behind once time ends it", async () => {
    const ctl = new AbortController();
    for (let i = 0; i < 20; i++) await systemClock.sleep(1, ctl.signal);
    expect(getEventListeners(ctl.signal, "abort")).toHaveLength(0);
  });
});
