import { describe, expect, it } from "vitest";
import { healthSummary } from "../../shared/status-health.js";
import type { HealthRecord } from "../../shared/stream-health-store.js";
import type { Stream } from "../../shared/types.js";

const stream = (id: string): Stream => ({ id, url: `http://radio.example/${id}`, name: `Radio ${id}`, metadata: {} });
const record = (over: Partial<HealthRecord> & { stream: string }): HealthRecord => ({
  failingOn: null,
  failingSince: null,
  failingForMs: null,
  lastOkAt: null,
  lastError: null,
  lastErrorAt: null,
  quarantinedAt: null,
  retryAt: null,
  retryInMs: null,
  retries: 0,
  ...over,
});

describe("healthSummary (what /streams/status names)", () => {
  it("names the failing, quarantined and never-heard streams; every other active stream is ok", () => {
    const streams = ["1", "2", "3", "4", "5", "6"].map(stream);
    const owners: Record<string, string | null> = { "1": "a", "2": "a", "3": "b", "4": null, "5": "b", "6": "a" };
    const at = "2026-12-01T00:00:00.000Z";
    const records = new Map<string, HealthRecord>([
      ["1", record({ stream: "1", lastOkAt: at })],
      ["2", record({ stream: "2", failingOn: "a", failingSince: at, lastError: "403 Forbidden" })],
      ["3", record({ stream: "3", failingOn: "a", failingSince: at, lastOkAt: at })], // the episode was on a former owner
      ["4", record({ stream: "4", quarantinedAt: at, lastError: "refused" })],
      ["6", record({ stream: "6", lastError: "timeout", lastErrorAt: at })], // never heard, no episode
    ]);
    const s = healthSummary(streams, (id) => owners[id] ?? null, records);
    expect(s.counts).toEqual({ ok: 2, failing: 1, quarantined: 1, unknown: 2 });
    expect(s.failing.map((f) => f.id)).toEqual([2]);
    expect(s.quarantined.map((q) => q.id)).toEqual([4]);
    expect(s.unknown).toEqual(["5", "6"]);
    // The lists and the counts agree: what no list names is ok.
    const named = new Set([...s.failing.map((f) => String(f.id)), ...s.quarantined.map((q) => String(q.id)), ...s.unknown]);
    expect(streams.filter((x) => !named.has(x.id)).length).toBe(s.counts.ok);
  });
});
