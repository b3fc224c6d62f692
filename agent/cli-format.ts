/**
 * fingerctl's text helpers: aligned tables, durations, timestamps and id lists. Pure
 * formatting of values the agent sent; nothing here reads or checks an answer.
 */

/** Left-aligned columns, two spaces apart; numeric columns right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [header.map(String), ...rows.map((r) => r.map(String))];
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number"));
  const width = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return (
    cells
      .map((r) =>
        r
          .map((c, i) => (numeric[i] ? c.padStart(width[i]!) : c.padEnd(width[i]!)))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}

export const pct = (x: number) => `${x.toFixed(1)}%`;
export function ago(ms: number | null): string {
  if (ms === null) return "never";
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  return `${Math.round(ms / 3_600_000)}h`;
}
export const time = (iso: string | null) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "-");
export function ids(list: readonly (number | string)[], max = 12): string {
  if (list.length === 0) return "-";
  return list.slice(0, max).join(",") + (list.length > max ? ` …(+${list.length - max})` : "");
}
