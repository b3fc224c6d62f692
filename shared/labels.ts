/**
 * Placement labels: what a worker is (an agent's LABELS, e.g. "exit=br,region=sudeste")
 * and what a stream requires (its STREAMS_PLACEMENT_COLUMN value, e.g. "exit=nl"), in one
 * syntax and one matching rule, shared by the settings, the catalog reader, the leader's
 * plan and the hashing agents. PURE.
 *
 * Guarantees: `parseLabels` accepts exactly comma-separated key=value pairs of 1-63
 * letters, digits, `_ . -` (spaces around items ignored, a key at most once) and says
 * what is wrong otherwise; `satisfies(labels, constraint)` is true exactly when the
 * worker carries every pair the stream requires (an empty or absent constraint: any
 * worker). Does not: know about any particular key (`exit` is only a convention, used by
 * the failure memory's preference for another exit: shared/placement/health-rules.ts).
 */
export type Labels = Readonly<Record<string, string>>;

const TOKEN = /^[A-Za-z0-9_.-]{1,63}$/;
export const LABELS_RULE = "comma-separated key=value pairs of letters, digits, _ . - (e.g. exit=br,region=sudeste)";

export function parseLabels(text: string): { readonly ok: true; readonly labels: Labels } | { readonly ok: false; readonly error: string } {
  const out: Record<string, string> = {};
  const trimmed = text.trim();
  if (trimmed === "") return { ok: true, labels: out };
  for (const raw of trimmed.split(",")) {
    const item = raw.trim();
    const eq = item.indexOf("=");
    if (eq < 0) return { ok: false, error: `"${item}" is not key=value` };
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (!TOKEN.test(key) || !TOKEN.test(value)) return { ok: false, error: `"${item}": key and value must be 1-63 letters, digits, _ . -` };
    if (key in out) return { ok: false, error: `"${key}" is given twice` };
    out[key] = value;
  }
  return { ok: true, labels: out };
}

/** The worker (labels) may serve a stream that requires `constraint`. */
export function satisfies(labels: Labels | undefined, constraint: Labels | undefined): boolean {
  if (!constraint) return true;
  for (const [k, v] of Object.entries(constraint)) if (labels?.[k] !== v) return false;
  return true;
}

/** "exit=br,region=sudeste" (keys sorted), or "" for none. */
export function formatLabels(labels: Labels | undefined): string {
  if (!labels) return "";
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}
