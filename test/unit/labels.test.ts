/**
 * Placement labels (shared/labels.ts): one syntax for LABELS and the catalog's placement
 * column, one matching rule, and the hashed fallback honouring it
 * (shared/placement/hash-owners.ts) the same way for every agent.
 */
import { describe, expect, it } from "vitest";
import { parseCatalogRows } from "../../shared/catalog.js";
import { ConfigError, loadConfig } from "../../shared/config.js";
import { parseLabels, satisfies } from "../../shared/labels.js";
import { hashOwners } from "../../shared/placement/hash-owners.js";

describe("labels", () => {
  it("parses key=value pairs and says what is wrong otherwise", () => {
    expect(parseLabels(" exit=br , region=sudeste ")).toEqual({ ok: true, labels: { exit: "br", region: "sudeste" } });
    expect(parseLabels("")).toEqual({ ok: true, labels: {} });
    expect(parseLabels("exit")).toMatchObject({ ok: false, error: expect.stringContaining("not key=value") });
    expect(parseLabels("exit=br,exit=nl")).toMatchObject({ ok: false, error: expect.stringContaining("twice") });
    expect(parseLabels("exit=b r")).toMatchObject({ ok: false });
  });

  it("a worker satisfies a constraint when it carries every pair", () => {
    expect(satisfies({ exit: "br", region: "s" }, { exit: "br" })).toBe(true);
    expect(satisfies({ exit: "nl" }, { exit: "br" })).toBe(false);
    expect(satisfies(undefined, { exit: "br" })).toBe(false);
    expect(satisfies(undefined, undefined)).toBe(true);
  });

  it("LABELS and STREAMS_PLACEMENT_COLUMN are checked with a one-line error", () => {
    expect(loadConfig({ LABELS: "exit=br" }).labels).toEqual({ exit: "br" });
    expect(() => loadConfig({ LABELS: "exit" })).toThrow(ConfigError);
    expect(() => loadConfig({ LABELS: "exit" })).toThrow(/LABELS.*key=value/);
    expect(() => loadConfig({ STREAMS_PLACEMENT_COLUMN: "a b" })).toThrow(/STREAMS_PLACEMENT_COLUMN/);
    expect(() => loadConfig({ STREAM_QUARANTINE_RETRY: "90000", STREAM_FAILURE_MEMORY: "3600" })).toThrow(/STREAM_QUARANTINE_RETRY/);
    expect(() => loadConfig({ STREAM_FAILOVER_AFTER: "soon" })).toThrow(/STREAM_FAILOVER_AFTER/);
  });

  it("the catalog's placement column becomes a constraint; an unreadable value is reported and the stream kept without one", () => {
    const snap = parseCatalogRows(
      [
        { id: 1, url: "u1", exit_req: "exit=nl" },
        { id: 2, url: "u2", exit_req: "nl" },
        { id: 3, url: "u3", exit_req: null },
      ],
      "id",
      "exit_req",
    );
    expect(snap.streams.map((s) => s.constraint)).toEqual([{ exit: "nl" }, undefined, undefined]);
    expect(snap.badConstraints).toEqual([expect.objectContaining({ id: "2", value: "nl" })]);
  });
});

describe("hashed mode honours constraints", () => {
  it("a constrained stream is owned only by a member that carries its labels, or by nobody", () => {
    const members = [
      { id: "a", weight: 50, labels: { exit: "nl" }, held: [] },
      { id: "b", weight: 50, labels: { exit: "br" }, held: [] },
      { id: "c", weight: 50, held: [] },
    ];
    const streams = Array.from({ length: 60 }, (_, i) => ({ id: `s${i}`, url: "", name: "", metadata: {}, constraint: i % 3 === 0 ? { exit: "br" } : i % 3 === 1 ? { exit: "xx" } : undefined }));
    const owners = hashOwners(streams, members, { imbalanceThreshold: 0.15, maxStreamDifference: 3 });
    for (const s of streams) {
      if (s.constraint?.exit === "br") expect(owners.get(s.id)).toBe("b");
      else if (s.constraint?.exit === "xx") expect(owners.has(s.id)).toBe(false);
      else expect(["a", "b", "c"]).toContain(owners.get(s.id));
    }
    // A holder that no longer carries the labels gives the stream up to one that does.
    const moved = hashOwners(streams, [{ ...members[0]!, held: ["s0"] }, members[1]!, members[2]!], { imbalanceThreshold: 0.15, maxStreamDifference: 3 });
    expect(moved.get("s0")).toBe("b");
  });
});
