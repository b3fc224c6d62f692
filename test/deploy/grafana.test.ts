/**
 * deploy/grafana/fingerv7.json: an importable dashboard (a Prometheus data-source variable
 * used by every panel, an `instance` variable), showing what the operator needs; every
 * PromQL expression in it (panels, panels nested in rows, template queries) parses
 * (promtool), and every metric it names, and every metric deploy/prometheus/alerts.yml
 * names, is exported by a real running agent once it leads, by a sample or at least by
 * its `# TYPE` line.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { leaderMetricsText } from "./agent-metrics.js";
import { ROOT, alertRules, exposition, isExported, metricNames, promtool } from "./promql.js";

type Json = { [k: string]: any };
const dashboard = JSON.parse(fs.readFileSync(path.join(ROOT, "deploy/grafana/fingerv7.json"), "utf8")) as Json;
const DS_UID = "${DS_PROMETHEUS}";

/** Every panel, rows' nested panels included. */
function allPanels(panels: Json[] = dashboard.panels): Json[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}
const panelExprs = allPanels().flatMap((p) => (p.targets ?? []).map((t: Json) => t.expr as string));
/** label_values(selector, label) → selector; label_values(label) reads no metric. */
const templateExprs = (dashboard.templating.list as Json[])
  .filter((v) => v.type === "query")
  .map((v) => String(typeof v.query === "string" ? v.query : v.query.query))
  .map((q) => /^label_values\((.+),\s*\w+\)$/.exec(q)?.[1] ?? q.replace(/^label_values\(\s*\w+\s*\)$/, ""))
  .filter(Boolean);

describe("deploy/grafana/fingerv7.json", () => {
  it("is an importable dashboard with a Prometheus data-source variable used everywhere and an instance variable", () => {
    expect(Object.keys(dashboard)[0]).toBe("description");
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    const vars = Object.fromEntries((dashboard.templating.list as Json[]).map((v) => [v.name, v]));
    expect(vars.DS_PROMETHEUS).toMatchObject({ type: "datasource", query: "prometheus" });
    expect(vars.instance).toMatchObject({ type: "query", datasource: { uid: DS_UID }, includeAll: true, multi: true });
    const panels = allPanels();
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels.filter((p) => p.type !== "row")) {
      expect(p.datasource?.uid, p.title).toBe(DS_UID);
      expect(p.gridPos, p.title).toMatchObject({ w: expect.any(Number), h: expect.any(Number) });
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets) expect(t.datasource?.uid, p.title).toBe(DS_UID);
    }
    expect(panels.some((p) => p.type === "row" && p.panels.length > 0), "a collapsed row with nested panels").toBe(true);
  });

  it("shows leader and epoch, served and unassigned streams, moves by reason, per-instance load, handoff and tick latency, heartbeat failures, mode, stream health", () => {
    const wanted: [string, RegExp][] = [
      ["leader", /fingerv7_is_leader\b/],
      ["epoch", /fingerv7_leader_epoch\b/],
      ["served", /sum\(fingerv7_streams_served\)/],
      ["unassigned", /fingerv7_cluster_streams\{state="unassigned"\}/],
      ["moves by reason", /sum by \(reason\) \(rate\(fingerv7_moves_total\[/],
      ["load per instance", /sum by \(instance\) \(fingerv7_streams_served\{instance=~"\$instance"\}\)/],
      ["handoff latency", /histogram_quantile\(0\.95, sum by \(le\) \(rate\(fingerv7_handoff_duration_seconds_bucket\[/],
      ["leader tick latency", /histogram_quantile\(0\.95, sum by \(le\) \(rate\(fingerv7_leader_tick_duration_seconds_bucket\[/],
      ["heartbeat failures", /fingerv7_heartbeats_total\{result="failed"/],
      ["mode per agent", /max by \(instance\) \(fingerv7_mode\{/],
      ["streams by health", /max by \(health\) \(fingerv7_streams_health\)/],
      ["failure-driven moves by reason", /sum by \(reason\) \(rate\(fingerv7_stream_failovers_total\[/],
    ];
    for (const [what, re] of wanted) expect(panelExprs.some((e) => re.test(e)), what).toBe(true);
  });

  it("has only PromQL that promtool parses (Grafana variables substituted)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fingerv7-dash-"));
    try {
      const rules = [...panelExprs, ...templateExprs].map((expr, i) => ({
        record: `dashboard:expr_${i}`,
        expr: expr.replace(/\$__rate_interval|\$__interval|\$__range/g, "5m").replace(/\$\{?\w+\}?/g, ".*"),
      }));
      fs.writeFileSync(path.join(dir, "dashboard.rules.yml"), stringify({ groups: [{ name: "dashboard", rules }] }));
      const r = promtool(["check", "rules", path.join(dir, "dashboard.rules.yml")]);
      expect(r.code, r.output).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("metric names in the dashboard and the alert rules", () => {
  let text = "";
  beforeAll(async () => {
    text = await leaderMetricsText("grafana");
  });

  it("are all exported by a real agent once it leads (by a sample or a # TYPE line)", () => {
    const dashboardNames = [...new Set([...panelExprs, ...templateExprs].flatMap(metricNames))];
    const alertNames = [...new Set(alertRules().flatMap((r) => metricNames(r.expr)))];
    expect(dashboardNames).toEqual(expect.arrayContaining(["fingerv7_is_leader", "fingerv7_handoff_duration_seconds_bucket", "process_resident_memory_bytes"]));
    const e = exposition(text);
    expect(dashboardNames.filter((n) => !isExported(n, e)), "read by the dashboard but not exported by the agent").toEqual([]);
    expect(alertNames.filter((n) => !isExported(n, e)), "read by alerts.yml but not exported by the agent").toEqual([]);
  });
});
