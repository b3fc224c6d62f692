/**
 * When an agent reads its catalog copy (agent/startup.ts catalogCopyWaitMs): an
 * orchestrated agent from half a FALLBACK_GRACE after its start (a fleet starting
 * together does not read and hash the whole catalog once per agent while it starts), a
 * hashing one at once; either way the copy is in hand, and watched for HASH_SETTLE, before
 * the earliest fallback to hashing.
 */
import { describe, expect, it } from "vitest";
import { catalogCopyWaitMs } from "../../agent/startup.js";
import { ManualClock } from "../../shared/clock.js";
import { loadConfig } from "../../shared/config.js";

describe("the catalog copy's first read", () => {
  const config = loadConfig({});

  it("an orchestrated agent waits half a FALLBACK_GRACE from its start, then reads", async () => {
    const clock = new ManualClock(50_000);
    const startedAt = clock.now();
    const wait = (mode: "orchestrated" | "hashed") => catalogCopyWaitMs({ useOrchestrator: true, mode, sinceStartMs: clock.now() - startedAt, fallbackGraceMs: config.fallbackGraceMs });
    expect(wait("orchestrated")).toBe(config.fallbackGraceMs / 2);
    await clock.advance(1000);
    expect(wait("orchestrated")).toBe(config.fallbackGraceMs / 2 - 1000);
    await clock.advance(config.fallbackGraceMs / 2 - 1000);
    expect(wait("orchestrated")).toBe(0);
    // Read before the earliest fallback, with time to watch the hashed view settle.
    expect(config.fallbackGraceMs / 2 + config.hashSettleMs).toBeLessThanOrEqual(config.fallbackGraceMs);
  });

  it("a hashing agent reads at once: in hashed mode, or without the orchestrator", () => {
    expect(catalogCopyWaitMs({ useOrchestrator: true, mode: "hashed", sinceStartMs: 0, fallbackGraceMs: config.fallbackGraceMs })).toBe(0);
    expect(catalogCopyWaitMs({ useOrchestrator: false, mode: "orchestrated", sinceStartMs: 0, fallbackGraceMs: config.fallbackGraceMs })).toBe(0);
  });
});
