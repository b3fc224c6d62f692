/**
 * deploy/prometheus/: the alert rules pass `promtool check rules`, their unit tests pass
 * `promtool test rules` with a firing and a quiet case for every alert, every rule carries
 * `for`, a severity, a summary, a description and a runbook that exists in
 * docs/operations.md, and every metric they read is exported by a real running agent.
 * A missing promtool FAILS this file (see promql.ts).
 */
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { leaderMetricsText } from "./agent-metrics.js";
import { ALERTS as RULES, ROOT, alertRules, exposition, isExported, metricNames, promtool } from "./promql.js";

const TESTS = "deploy/prometheus/alerts.test.yml";
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), "utf8");
const rules = alertRules();
type RuleTest = { alertname: string; exp_alerts?: unknown[] | null };
const ruleTests = (parse(read(TESTS)) as { tests: { alert_rule_test?: RuleTest[] }[] }).tests.flatMap((t) => t.alert_rule_test ?? []);

describe("deploy/prometheus/alerts.yml", () => {
  it("passes promtool check rules", () => {
    const r = promtool(["check", "rules", RULES]);
    expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(r.code, r.output).toBe(0);
  });

  it("passes its promtool unit tests, which fire and stay quiet for every alert", () => {
    const r = promtool(["test", "rules", TESTS]);
    expect(r.code, r.output).toBe(0);
    for (const { alert } of rules) {
      const cases = ruleTests.filter((t) => t.alertname === alert);
      expect(cases.some((t) => (t.exp_alerts ?? []).length > 0), `${alert}: a case where it fires`).toBe(true);
      expect(cases.some((t) => (t.exp_alerts ?? []).length === 0), `${alert}: a case where it stays quiet`).toBe(true);
    }
  });

  it("gives every alert a for, a severity, a summary, a description and a runbook in docs/operations.md", () => {
    const anchors = new Set([...read("docs/operations.md").matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-")));
    expect(rules.map((r) => r.alert)).toEqual(["FingerV7AgentsAbsent", "FingerV7NoLeader", "FingerV7MultipleLeaders", "FingerV7StreamsUnassigned", "FingerV7WorkerWithoutLease", "FingerV7HeartbeatFailures", "FingerV7RebalanceStorm", "FingerV7StreamsQuarantined", "FingerV7StreamsFailing", "FingerV7StreamFailoverStorm", "FingerV7WorkerDegraded"]);
    for (const r of rules) {
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(["warning", "critical"], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
      const [file, anchor] = (r.annotations?.runbook ?? "").split("#");
      expect(file, r.alert).toBe("docs/operations.md");
      expect(anchors.has(anchor!), `${r.alert}: docs/operations.md has no heading for #${anchor}`).toBe(true);
    }
  });

  it("alerts on stream health from fingerv7_streams_health{health} and fingerv7_stream_failovers_total{reason}", () => {
    const byName = new Map(rules.map((r) => [r.alert, r.expr]));
    expect(byName.get("FingerV7StreamsQuarantined")).toMatch(/fingerv7_streams_health\{health="quarantined"\}/);
    expect(byName.get("FingerV7StreamsFailing")).toMatch(/fingerv7_streams_health\{health="failing"\}/);
    expect(byName.get("FingerV7StreamFailoverStorm")).toMatch(/fingerv7_stream_failovers_total\{reason="failing"\}/);
    expect(byName.get("FingerV7WorkerDegraded")).toMatch(/fingerv7_stream_failovers_total\{reason="worker-degraded"\}/);
    expect(read(RULES)).not.toMatch(/^# Stream-health alerts/m);
  });
});

describe("metric names in the alert rules", () => {
  let text = "";
  beforeAll(async () => {
    text = await leaderMetricsText("alerts");
  });

  it("are read from PromQL without functions, labels, ranges or grouping", () => {
    expect(metricNames('histogram_quantile(0.95, sum by (le) (rate(a_bucket{x=~"$v"}[$__rate_interval]))) / ignoring(b) c offset 5m > bool 1e3')).toEqual(["a_bucket", "c"]);
  });

  it("are all exported by a real agent once it leads", () => {
    const names = [...new Set(rules.flatMap((r) => metricNames(r.expr)))];
    expect(names.length).toBeGreaterThanOrEqual(6);
    const e = exposition(text);
    expect(names.filter((n) => !isExported(n, e)), "read by alerts.yml but not exported by the agent").toEqual([]);
  });
});
