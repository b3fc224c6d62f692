/**
 * The /v1 assignment answer as sent (agent/http/worker.ts assignmentText): the same JSON
 * as assignmentBody's, whatever the offer, its streams' part encoded once per listing.
 */
import { describe, expect, it } from "vitest";
import type { Agent } from "../../agent/agent.js";
import { assignmentBody, assignmentText } from "../../agent/http/worker.js";
import type { Offer } from "../../agent/serving.js";

const agent = (leader: { id: string; epoch: number } | undefined) =>
  ({ id: "ag-1", mode: "orchestrated", leaderInfo: leader, ownAssignment: { epoch: 4 } }) as unknown as Agent;

describe("the /v1 assignment answer's text", () => {
  it("is assignmentBody's JSON, with a leader or without, streams or none", () => {
    const streams = [
      { id: "12", url: "http://x.invalid/12", name: "Twelve \"quoted\"", metadata: { cidade: "São Paulo" } },
      { id: "abc", url: "http://x.invalid/abc", name: "ünïcode \u2028", metadata: {} },
    ];
    const offers: Offer[] = [
      { version: 7, streams, leaseMs: 2500 },
      { version: 8, streams: [], leaseMs: 0 },
    ];
    for (const a of [agent({ id: "ag-2", epoch: 9 }), agent(undefined)]) {
      for (const o of offers) expect(JSON.parse(assignmentText(a, o))).toEqual(assignmentBody(a, o));
      for (const o of offers) expect(assignmentText(a, o)).toBe(JSON.stringify(assignmentBody(a, o)));
    }
  });

  it("encodes a listing's streams once: a later answer with the same array reuses them", () => {
    const streams = [{ id: "1", url: "http://x.invalid/1", name: "one", metadata: {} }];
    const a = agent(undefined);
    const first = assignmentText(a, { version: 1, streams, leaseMs: 3000 });
    streams[0]!.name = "changed in place"; // an offer's streams are never changed in place; this shows the reuse
    expect(assignmentText(a, { version: 1, streams, leaseMs: 2000 })).toBe(first.replace('"lease_ms":3000', '"lease_ms":2000'));
  });
});
