/**
 * The clocks' sleeps (shared/clock.ts): a sleep that ends, by time or by its signal, leaves
 * no listener on the signal, so a loop's long-lived signal does not collect one per sleep
 * (regression: the manual clock left every listener behind, and tests whose loops slept
 * more than ten times on one signal printed MaxListenersExceededWarning); an abort still
 * ends a pending sleep at once. A cancelled wait costs no stack: `cancel` gives a reason
 * (no DOMException) and the sleep rejects with an AbortError whose stack is its name alone,
 * with the stack trace limit restored after.
 */
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { CANCELLED, ManualClock, cancel, isAbortError, systemClock } from "../../shared/clock.js";

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

describe("a cancelled wait", () => {
  it("gives its reason and rejects with a stackless AbortError, on both clocks", async () => {
    const limit = Error.stackTraceLimit;
    for (const clock of [systemClock, new ManualClock(0)]) {
      const ctl = new AbortController();
      const pending = clock.sleep(60_000, ctl.signal);
      cancel(ctl);
      expect(ctl.signal.reason).toBe(CANCELLED);
      const err = await pending.then(() => undefined, (e: unknown) => e);
      expect(isAbortError(err)).toBe(true);
      expect((err as Error).stack).toBe("AbortError: aborted");
      expect(Error.stackTraceLimit).toBe(limit);
      // Already aborted: rejects at once, the same way.
      await expect(clock.sleep(10, ctl.signal)).rejects.toMatchObject({ name: "AbortError", stack: "AbortError: aborted" });
    }
  });
});
