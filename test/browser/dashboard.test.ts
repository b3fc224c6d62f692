/**
 * The dashboard in a real headless browser (Debian's chromium, driven by playwright-core;
 * .ci/tools installs it): the page renders the instances of a running cluster, updates
 * by itself when one is drained, and shows stream health: a stream its worker reports
 * failing (map colour, legend count, the failing list with its error), a rate-limited
 * worker marked degraded, and the served-and-healthy chart from /health/streams. Screenshots are kept in test-output/ for a person to look at.
 * A missing browser FAILS the test; it never skips.
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { instancesBody, streamsStatusBody } from "../../shared/status.js";
import { TOKEN, call, startAgent, waitSettled, type RunningAgent } from "../http/fixture.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const OUT = path.join(ROOT, "test-output");
const CHROMIUM = "/usr/bin/chromium";
const STREAMS = 30;

describe("the dashboard in headless chromium", () => {
  let db: TestDatabase;
  const agents: RunningAgent[] = [];
  let browser: Browser | undefined;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install the Debian package chromium (.ci/tools does)`);
    }
    mkdirSync(OUT, { recursive: true });
    db = await createTestDatabase("dashboard");
    await createCatalog(db.sql, STREAMS);
    const prefix = uniqueName("dashboard");
    for (const [id, capacity] of [["edge-1", 20], ["edge-2", 15], ["edge-3", 10]] as const) {
      // A long STREAM_FAILOVER_AFTER: a failing stream stays failing on its worker while the page is read.
      agents.push(await startAgent({ id, databaseUrl: db.url, prefix, capacity, listen: true, env: { ADMIN_TOKEN: TOKEN, LOCATION: "lab", STREAM_FAILOVER_AFTER: "600" } }));
    }
    await waitSettled(agents[0]!.app, STREAMS, "the cluster to settle", 3);
    // Lean on a shared 2-core machine: one page, no GPU, no sandbox helpers.
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions"] });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
  });

  afterAll(async () => {
    await browser?.close();
    for (const a of agents) await a.close();
    await db?.drop();
  });

  const statusOf = (id: string) => page.getAttribute(`[data-instance="${id}"]`, "data-status");
  const countOf = (id: string) => page.textContent(`[data-instance="${id}"] .current`);

  it("renders every instance with its load, state and the leader marker", async () => {
    // Any agent serves the whole cluster's dashboard: ask a follower-or-leader, whichever is second.
    await page.goto(`${agents[1]!.url}/`);
    // Polling from outside the page: its CSP (rightly) forbids evaluating strings inside it.
    await expect.poll(() => page.locator("[data-instance]").count(), { timeout: 20_000, interval: 100 }).toBe(3);
    expect(await page.title()).toBe("fingerv7 fleet");
    // The page shows what the API says (it may lag the API by one push while a join settles).
    const mismatch = async () => {
      const api = instancesBody.parse((await call(agents[0]!.app, "GET", "/instances")).body);
      const wrong: string[] = [];
      for (const i of api.instances) {
        const shown = `${await statusOf(i.instance_id)} ${await countOf(i.instance_id)}`;
        if (shown !== `active ${i.current_streams}`) wrong.push(`${i.instance_id}: page "${shown}", API "active ${i.current_streams}"`);
      }
      return wrong;
    };
    await expect.poll(mismatch, { timeout: 20_000, interval: 200 }).toEqual([]);
    expect(await page.locator("[data-leader]").count()).toBe(1);
    const leaderId = agents[0]!.agent.leaderInfo?.id;
    expect(await page.textContent("#leader")).toBe(leaderId);
    expect(await page.textContent("#mode")).toBe("orchestrated");
    expect(await page.textContent("#unassigned-count")).toBe("0");
    expect(await page.locator("#map span").count()).toBe(STREAMS);
    expect(await page.locator("#moves li.move").count()).toBeGreaterThan(0);
    await page.waitForSelector("#live.on", { timeout: 10_000 });
    await page.screenshot({ path: path.join(OUT, "dashboard.png"), fullPage: true });
  });

  it("updates by itself when an instance is drained (no reload)", async () => {
    const before = Number(await page.getAttribute("body", "data-seq"));
    const res = await fetch(`${agents[2]!.url}/instances/edge-2/drain`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    await expect.poll(async () => `${await statusOf("edge-2")} ${await countOf("edge-2")}`, { timeout: 30_000, interval: 100 }).toBe("draining 0");
    expect(Number(await page.getAttribute("body", "data-seq"))).toBeGreaterThan(before);
    // 30 streams, 30 places left (20 + 10): everything is served again by the other two.
    await expect.poll(async () => `${await page.textContent("#unassigned-count")} ${await page.textContent("#draining-count")}`, { timeout: 30_000, interval: 100 }).toBe("0 1");
    expect(await page.locator('#moves li.move[data-kind="drain"]').count()).toBe(1);
    expect(await page.locator("#moves .reason.drain").count()).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(OUT, "dashboard-drained.png"), fullPage: true });
    expect(existsSync(path.join(OUT, "dashboard-drained.png"))).toBe(true);
  });

  it("shows stream health: a failing stream, a degraded worker, the served-and-healthy chart", async () => {
    // edge-1's worker reports one of its streams failing and the others fine.
    const edge1 = agents[0]!;
    const mine = streamsStatusBody.parse((await call(edge1.app, "GET", "/streams/status")).body).distribution.find((d) => d.instance_id === "edge-1")!.streams;
    const victim = mine[0]!;
    expect((await call(edge1.app, "GET", "/v1/assignment")).status).toBe(200); // outcomes count for streams it holds
    const report = await call(edge1.app, "POST", "/v1/report", { body: { streams: mine.map((id) => (id === victim ? { id, status: "failed", error: "403 geo-blocked" } : { id, status: "ok" })) } });
    expect(report.status).toBe(200);
    const row = page.locator(`#failing tr[data-stream="${victim}"]`);
    await expect.poll(() => row.count(), { timeout: 30_000, interval: 200 }).toBe(1);
    expect(await row.getAttribute("data-health")).toBe("failing");
    expect(await row.locator("td.err").textContent()).toBe("403 geo-blocked");
    expect(await page.locator('#health-map span[data-health="failing"]').count()).toBe(1);
    expect(await page.locator('#health-map span[data-health="ok"]').count()).toBeGreaterThan(0);
    expect(await page.textContent('#health-legend [data-legend="failing"]')).toBe("failing (1)");

    // edge-3's worker is paused by the recognition service's rate limit: degraded.
    const until = new Date(Date.now() + 10 * 60_000).toISOString();
    expect((await call(agents[2]!.app, "POST", "/v1/report", { body: { streams: [], rate_limited_until: until } })).status).toBe(200);
    await expect.poll(() => page.getAttribute('[data-instance="edge-3"]', "data-degraded"), { timeout: 30_000, interval: 200 }).toBe("rate-limited");
    expect(await page.textContent('[data-instance="edge-3"] .degraded-mark')).toMatch(/degraded: rate-limited until/);
    expect(await page.locator('[data-instance="edge-1"][data-degraded]').count()).toBe(0);

    // The chart: the leader records one sample a minute; the page draws what the API returns.
    type Sample = { served: number; streams: number; healthy: number };
    const samples = async (): Promise<Sample[]> => (await call(edge1.app, "GET", "/health/streams?minutes=60")).body.samples ?? [];
    await expect.poll(async () => (await samples()).length, { timeout: 90_000, interval: 1000 }).toBeGreaterThan(0);
    await page.reload();
    await expect.poll(() => page.locator("#health-chart polyline").count(), { timeout: 20_000, interval: 200 }).toBe(3);
    const shown = async () => {
      const all = await samples();
      const last = all[all.length - 1]!;
      return (await page.textContent("#health-now"))?.startsWith(`now ${last.served} of ${last.streams} served, ${last.healthy} served and healthy`) === true;
    };
    await expect.poll(shown, { timeout: 40_000, interval: 500 }).toBe(true);
    await page.screenshot({ path: path.join(OUT, "dashboard-health.png"), fullPage: true });
  }, 150_000);

  it("ran without a script error or a blocked resource", () => {
    expect(problems).toEqual([]);
  });
});
