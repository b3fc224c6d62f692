import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { Metrics } from "../../shared/metrics.js";
import { requireAdmin, tokenMatches } from "./require-admin.js";

const TOKEN = "change-me-admin-token";

function app(token: string | undefined, metrics = new Metrics({ instance: "t" })) {
  const a = new Hono();
  a.post("/rebalance", requireAdmin({ token, metrics }), (c) => c.json({ ok: true }));
  a.put("/mode", requireAdmin({ token, metrics }), (c) => c.json({ ok: true }, 400));
  return { a, metrics };
}

const post = (a: Hono, path: string, auth?: string) => a.request(path, { method: path === "/mode" ? "PUT" : "POST", headers: auth === undefined ? {} : { authorization: auth } });

describe("requireAdmin", () => {
  it("compares tokens in constant time, by value", () => {
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    expect(tokenMatches(TOKEN.slice(0, -1), TOKEN)).toBe(false);
    expect(tokenMatches("", TOKEN)).toBe(false);
    expect(tokenMatches(`${TOKEN} `, TOKEN)).toBe(false);
  });

  it("refuses everything (403) when no token is configured, whatever the header", async () => {
    const { a } = app(undefined);
    for (const auth of [undefined, `Bearer ${TOKEN}`, "Bearer "]) {
      const r = await post(a, "/rebalance", auth);
      expect(r.status).toBe(403);
      expect(((await r.json()) as { message: string }).message).toMatch(/ADMIN_TOKEN/);
    }
  });

  it("401 with WWW-Authenticate for a missing, malformed or wrong token; passes the right one", async () => {
    const { a, metrics } = app(TOKEN);
    for (const auth of [undefined, TOKEN, `Basic ${TOKEN}`, "Bearer wrong-token-value", `Bearer ${TOKEN} extra`]) {
      const r = await post(a, "/rebalance", auth);
      expect(r.status, String(auth)).toBe(401);
      expect(r.headers.get("www-authenticate")).toMatch(/^Bearer/);
    }
    expect((await post(a, "/rebalance", `bearer  ${TOKEN} `)).status).toBe(200);
    expect((await post(a, "/mode", `Bearer ${TOKEN}`)).status).toBe(400);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/fingerv7_admin_requests_total\{action="rebalance",result="unauthorized",instance="t"\} 5/);
    expect(text).toMatch(/fingerv7_admin_requests_total\{action="rebalance",result="ok",instance="t"\} 1/);
    expect(text).toMatch(/fingerv7_admin_requests_total\{action="mode",result="bad_request",instance="t"\} 1/);
  });
});
