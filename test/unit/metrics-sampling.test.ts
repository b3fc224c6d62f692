/**
 * The default process metrics sample the event-loop delay every EVENT_LOOP_SAMPLE_MS
 * (1 s), not at prom-client's default 10 ms, which woke an idle agent 100 times a
 * second; the delay gauges are still exported.
 */
import perfHooks from "node:perf_hooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EVENT_LOOP_SAMPLE_MS, Metrics } from "../../shared/metrics.js";

describe("Metrics: event-loop delay sampling", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("samples the event-loop delay once a second and still exports its gauges", async () => {
    const monitor = vi.spyOn(perfHooks, "monitorEventLoopDelay");
    const metrics = new Metrics({ instance: "t" });
    expect(EVENT_LOOP_SAMPLE_MS).toBe(1000);
    expect(monitor).toHaveBeenCalledTimes(1);
    expect(monitor.mock.calls[0]![0]).toEqual({ resolution: EVENT_LOOP_SAMPLE_MS });
    const text = await metrics.registry.metrics();
    for (const family of ["nodejs_eventloop_lag_seconds", "nodejs_eventloop_lag_p99_seconds", "nodejs_eventloop_lag_max_seconds"]) {
      expect(text, family).toContain(`# TYPE ${family} gauge`);
    }
  });
});
