/**
 * The dashboard's HTTP side through `app.request()`: the page (self-contained, locked down
 * by its CSP), the combined state, and the server-sent event stream.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { instancesBody, statusBody, streamsStatusBody } from "../../shared/status.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { call, startAgent, waitSettled, type RunningAgent } from "./fixture.js";

const STREAMS = 8;

describe("dashboard routes", () => {
  let db: TestDatabase;
  let a: RunningAgent;

  beforeAll(async () => {
    db = await createTestDatabase("dashroutes");
    await createCatalog(db.sql, STREAMS);
    a = await startAgent({ id: "d1", databaseUrl: db.url, prefix: uniqueName("dashroutes"), capacity: 10 });
    await waitSettled(a.app, STREAMS, "the cluster to settle", 1);
  });

  afterAll(async () => {
    await a?.close();
    await db?.drop();
  });

  it("GET / serves one self-contained page with a strict content security policy", async () => {
    const r = await call(a.app, "GET", "/");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/^text\/html/);
    const html = r.body as string;
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain("<title>fingerv7 fleet</title>");
    // No external asset: nothing to build, nothing to fetch from elsewhere.
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet|https?:\/\//);
    const csp = r.headers.get("content-security-policy") ?? "";
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect(csp).toMatch(/connect-src 'self'/);
  });

  it("GET /dashboard/state: the three operator views in one answer", async () => {
    const r = await call(a.app, "GET", "/dashboard/state");
    expect(r.status).toBe(200);
    expect(statusBody.parse(r.body.status).streams.assigned).toBe(STREAMS);
    expect(instancesBody.parse(r.body.instances).instances).toHaveLength(1);
    expect(streamsStatusBody.parse(r.body.streams).distribution[0]!.count).toBe(STREAMS);
  });

  it("GET /dashboard/events pushes the state as server-sent events", async () => {
    const ctl = new AbortController();
    const res = await a.app.request("/dashboard/events", { signal: ctl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const events: string[] = [];
    while (events.length < 2) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      let at: number;
      while ((at = text.indexOf("\n\n")) >= 0) {
        events.push(text.slice(0, at));
        text = text.slice(at + 2);
      }
    }
    ctl.abort();
    await reader.cancel().catch(() => {});
    expect(events).toHaveLength(2);
    for (const e of events) {
      expect(e).toMatch(/^event: state$/m);
      const data = e.split("\n").find((l) => l.startsWith("data: "))!.slice(6);
      const body = JSON.parse(data);
      expect(statusBody.parse(body.status).answered_by).toBe("d1");
    }
  });
});
