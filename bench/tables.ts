/**
 * How the benchmarks print: aligned text tables, or markdown (`--md`) for the README, and
 * the number formats they share. Prints only; computes nothing.
 */
export type Table = (title: string, head: string[], rows: (string | number)[][], note?: string) => void;

/** Prints one table: aligned text, or markdown for the README when `md`. */
export const table =
  (md: boolean): Table =>
  (title, head, rows, note) => {
    const cells = rows.map((r) => r.map(String));
    if (md) {
      console.log(`\n**${title}**\n`);
      console.log(`| ${head.join(" | ")} |`);
      console.log(`| ${head.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`);
      for (const r of cells) console.log(`| ${r.join(" | ")} |`);
      if (note) console.log(`\n${note}`);
      return;
    }
    const w = head.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
    const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  ");
    console.log(`\n${title}\n${"=".repeat(title.length)}`);
    console.log(line(head));
    console.log(w.map((n) => "-".repeat(n)).join("  "));
    for (const r of cells) console.log(line(r));
    if (note) console.log(note);
  };

export const ratio = (moves: number, min: number) => (min === 0 ? (moves === 0 ? "1.00" : `∞ (${moves})`) : (moves / min).toFixed(2));
export const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
export const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
