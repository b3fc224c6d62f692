/**
 * Helpers for the deploy/ tests: the metric names a PromQL expression reads, the names a
 * Prometheus text exposition declares, and promtool (Debian package `prometheus`; .ci/tools
 * installs it). A missing promtool throws: these checks are never skipped.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const ALERTS = "deploy/prometheus/alerts.yml";

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

/** The alerting rules of deploy/prometheus/alerts.yml, every group's in order. */
export function alertRules(): AlertRule[] {
  const doc = parse(fs.readFileSync(path.join(ROOT, ALERTS), "utf8")) as { groups: { rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

const KEYWORDS = new Set(["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "inf", "nan"]);

/**
 * Metric names in a PromQL expression (Grafana variables allowed). Strings, Grafana
 * variables, label matchers, ranges and grouping clauses are removed first; what is left
 * is function names (followed by "("), keywords, numbers and metric names.
 */
export function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, " ")
    .replace(/\$\{[^}]*\}|\$\w+/g, " ")
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    if (m[2] === undefined && !KEYWORDS.has(m[1]!.toLowerCase())) names.add(m[1]!);
  }
  return [...names].sort();
}

/** Families (`# TYPE`/`# HELP` lines, with their type) and sample names of an exposition. */
export function exposition(text: string): { families: Map<string, string>; samples: Set<string> } {
  const families = new Map<string, string>();
  const samples = new Set<string>();
  for (const line of text.split("\n")) {
    const meta = /^# (TYPE|HELP) (\S+)(?: (\S+))?/.exec(line);
    if (meta) {
      if (meta[1] === "TYPE" || !families.has(meta[2]!)) families.set(meta[2]!, meta[1] === "TYPE" ? (meta[3] ?? "") : "");
    } else if (/^[A-Za-z_:]/.test(line)) {
      samples.add(/^[\w:]+/.exec(line)![0]);
    }
  }
  return { families, samples };
}

/**
 * Whether `name` is exported: a sample name, a declared family, or the _bucket/_sum/_count
 * series of a declared histogram (a histogram or summary for _sum/_count), which have no
 * sample before the first observation when the family is labelled.
 */
export function isExported(name: string, e: ReturnType<typeof exposition>): boolean {
  if (e.samples.has(name) || e.families.has(name)) return true;
  const m = /^(.+)_(bucket|sum|count)$/.exec(name);
  if (!m) return false;
  const type = e.families.get(m[1]!);
  return m[2] === "bucket" ? type === "histogram" : type === "histogram" || type === "summary";
}

export function promtool(args: readonly string[]): { code: number | null; output: string } {
  const r = spawnSync("promtool", args, { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
    throw new Error("promtool is not installed: it comes with the Debian package `prometheus` (run .ci/tools, or apt-get install prometheus). This test needs it and is never skipped.");
  }
  if (r.error) throw r.error;
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}
