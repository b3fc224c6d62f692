/**
 * `npm run demo -- --failures`: the demo's stream-health scenario, with the agents'
 * DEFAULT stream-health settings.
 * - LABELS: agents alternate exit=nl (odd: demo-1, demo-3, …) and exit=br (even);
 * - once the fleet serves everything, one stream that an exit=nl worker serves becomes
 *   geo-blocked (every worker's rule: fails with 403 where exit=nl, works on exit=br), and
 *   one other stream gets a dead upstream (fails everywhere: connection refused).
 * The simulated workers only report what happens to their captures; moving the geo-blocked
 * stream (after STREAM_FAILOVER_AFTER) and quarantining the dead one (after failing on
 * STREAM_QUARANTINE_AFTER workers) are the agents' doing. Pure except `arm`, which sets
 * the rules on the workers.
 */
import type { FailureRule, Labels, SimWorker } from "./sim-worker.js";

export const GEO_ERROR = "403 Forbidden (geo-blocked)";
export const DEAD_ERROR = "connection refused";

/** The LABELS of the i-th demo agent (0-based). */
export function demoLabels(i: number): Labels {
  return { exit: i % 2 === 0 ? "nl" : "br" };
}

export { formatLabels as labelsText } from "../shared/labels.js";

export interface Chosen {
  readonly geo: string;
  readonly dead: string;
  readonly geoOwner: string;
}

/**
 * Picks the geo-blocked stream (the lowest id an exit=nl worker serves, so that it has to
 * move) and the dead one (the lowest id of another worker). Undefined until every worker
 * kind serves something.
 */
export function choose(serving: readonly { id: string; labels: Labels; serving: readonly string[] }[]): Chosen | undefined {
  const byId = (a: string, b: string) => Number(a) - Number(b) || a.localeCompare(b);
  const nl = serving.filter((w) => w.labels.exit === "nl" && w.serving.length > 0);
  if (nl.length === 0) return undefined;
  const geoOwner = nl[0]!;
  const geo = [...geoOwner.serving].sort(byId)[0]!;
  const other = serving.filter((w) => w !== geoOwner && w.serving.length > 0);
  if (other.length === 0) return undefined;
  const dead = [...other[0]!.serving].sort(byId)[0]!;
  return { geo, dead, geoOwner: geoOwner.id };
}

export function failureRules(c: Chosen): FailureRule[] {
  return [
    { streams: [c.geo], on: { exit: "nl" }, error: GEO_ERROR },
    { streams: [c.dead], error: DEAD_ERROR },
  ];
}

export function arm(workers: readonly SimWorker[], c: Chosen): void {
  for (const w of workers) w.setFailures(failureRules(c));
}

/** Where each of the two streams is served now, for the status line. */
export function whereNow(c: Chosen, serving: readonly { id: string; serving: readonly string[] }[]): string {
  const at = (s: string) => serving.filter((w) => w.serving.includes(s)).map((w) => w.id).join("+") || "nobody";
  return `geo-blocked ${c.geo} on ${at(c.geo)} · dead ${c.dead} on ${at(c.dead)}`;
}

/** What the demo prints once the rules are armed: the scenario, when to expect what, where to watch. */
export function explain(c: Chosen, agents: readonly { id: string; labels: Labels }[], url: string): string[] {
  const group = (exit: string) => agents.filter((a) => a.labels.exit === exit).map((a) => a.id).join(", ");
  return [
    `Failures:   LABELS exit=nl on ${group("nl")}; exit=br on ${group("br")}`,
    `            stream ${c.geo} is geo-blocked: fails on exit=nl ("${GEO_ERROR}"), works on exit=br; now on ${c.geoOwner}`,
    `            stream ${c.dead} has a dead upstream: fails on every worker ("${DEAD_ERROR}")`,
    "            default settings: a stream failing for STREAM_FAILOVER_AFTER (120 s) moves to another worker;",
    "            one that failed on STREAM_QUARANTINE_AFTER (3) workers in a row is quarantined (about 6-7 min)",
    `Watch:      npx fingerctl --url ${url} streams --failing      (failing and quarantined, with the last error)`,
    `            npx fingerctl --url ${url} stream ${c.geo}      (and stream ${c.dead}: failures and moves)`,
    `            the dashboard: "Streams, coloured by health" and "Failing and quarantined streams"`,
  ];
}
