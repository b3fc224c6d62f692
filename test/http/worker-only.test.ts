/**
 * Only the worker speaks for the worker: the worker-facing routes answer loopback callers
 * (127.0.0.1, ::1) unless WORKER_ALLOW says more; operator reads stay open. A caller from
 * 127.0.0.2 (another loopback address, so another "host" as the server sees it) is
 * refused with a clear 403 through a real listening server.
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WORKER_PATHS } from "../../agent/http/app.js";
import { allowList, isAllowed } from "../../agent/http/worker-only.js";
import { ConfigError, loadConfig } from "../../shared/config.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { startAgent, type RunningAgent } from "./fixture.js";

function request(url: string, method: string, path: string, localAddress: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method, localAddress, headers: { "content-type": "application/json" } }, (res) => {
      let data = "";
      res.on("data", (d) => (data += d));
      res.on("end", () => {
        const json = /json/.test(String(res.headers["content-type"]));
        resolve({ status: res.statusCode ?? 0, body: json && data ? (JSON.parse(data) as Record<string, unknown>) : {} });
      });
    });
    req.on("error", reject);
    req.end(method === "GET" ? undefined : "{}");
  });
}

describe("worker routes answer only the worker beside the agent", () => {
  let db: TestDatabase;
  let local: RunningAgent;
  let widened: RunningAgent;

  beforeAll(async () => {
    db = await createTestDatabase("worker_only");
    await createCatalog(db.sql, 4);
    const prefix = uniqueName("worker_only");
    local = await startAgent({ id: "w1", databaseUrl: db.url, prefix, listen: true });
    widened = await startAgent({ id: "w2", databaseUrl: db.url, prefix, listen: true, env: { WORKER_ALLOW: "127.0.0.2/32, ::1" } });
  });

  afterAll(async () => {
    await local?.close();
    await widened?.close();
    await db?.drop();
  });

  it("refuses a caller from another address on every worker route, with a clear 403", async () => {
    for (const path of WORKER_PATHS) {
      const method = path === "/v1/assignment" || path === "/api/workers" || path === "/api/streams/assign" ? "GET" : "POST";
      const r = await request(local.url, method, path, "127.0.0.2");
      expect(r.status, path).toBe(403);
      expect(r.body.error).toBe("forbidden");
      expect(r.body.success).toBe(false);
      expect(String(r.body.message)).toContain("caller 127.0.0.2 is not in WORKER_ALLOW=127.0.0.1/32,::1/128");
    }
  });

  it("answers the worker on loopback, and operator reads from anywhere", async () => {
    expect((await request(local.url, "GET", "/v1/assignment", "127.0.0.1")).status).toBe(200);
    const status = await request(local.url, "GET", "/status", "127.0.0.2");
    expect(status.status).not.toBe(403);
    expect((await request(local.url, "GET", "/metrics", "127.0.0.2")).status).toBe(200);
  });

  it("WORKER_ALLOW widens (and replaces) the list", async () => {
    expect((await request(widened.url, "GET", "/v1/assignment", "127.0.0.2")).status).toBe(200);
    expect((await request(widened.url, "GET", "/v1/assignment", "127.0.0.1")).status).toBe(403);
  });

  it("matches IPv4-mapped IPv6 callers as IPv4; rejects garbage", () => {
    const list = allowList(["127.0.0.1/32", "::1/128"]);
    expect(isAllowed(list, "::ffff:127.0.0.1")).toBe(true);
    expect(isAllowed(list, "::1")).toBe(true);
    expect(isAllowed(list, "::ffff:10.0.0.1")).toBe(false);
    expect(isAllowed(list, "not an address")).toBe(false);
  });

  it("a bad WORKER_ALLOW stops the agent with one line naming it", () => {
    for (const bad of ["10.0.0.0/33", "localhost", "10.0.0.1/8/2", ","]) {
      expect(() => loadConfig({ WORKER_ALLOW: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ WORKER_ALLOW: bad })).toThrow(/^Invalid setting WORKER_ALLOW=/);
    }
    expect(loadConfig({ WORKER_ALLOW: "10.1.2.3, 192.168.0.0/16" }).workerAllow).toEqual(["10.1.2.3/32", "192.168.0.0/16"]);
  });
});
