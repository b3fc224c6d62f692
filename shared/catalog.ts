/**
 * Reads the operator's streams catalog. NEVER writes it.
 *
 * The table name and id column come from validated settings and are quoted; no SQL is
 * built from anything else. Each row is read as one JSON object (to_jsonb), so every
 * column type (integer or text ids, timestamps, jsonb) arrives JSON-safe.
 *
 * Bad rows are skipped with a reason, never a crash: a NULL id, a missing url, a
 * duplicate id (the first row by id order wins). Rows with `active = false` are not
 * served; the column is honoured only when it exists. A placement value that cannot be
 * read (STREAMS_PLACEMENT_COLUMN) is reported and the stream served without a constraint.
 *
 * Change detection (catalogVersion): the row count and a digest of every row's xmin
 * (the transaction that wrote its current version) and place, in one row. Any insert,
 * update or delete changes it; equal versions mean the rows are as read.
 */
import type { Sql } from "./db.js";
import { ident } from "./db.js";
import { LABELS_RULE, parseLabels } from "./labels.js";
import type { Stream, StreamId } from "./types.js";

export class CatalogError extends Error {
  override readonly name = "CatalogError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface CatalogSkip {
  readonly id: string | null;
  readonly reason: "null id" | "missing url" | "duplicate id";
}

/** A placement value that could not be read: the stream is served anywhere (nothing is lost), and this says why. */
export interface CatalogConstraintError {
  readonly id: string;
  readonly value: string;
  readonly error: string;
}

export interface CatalogSnapshot {
  /** Active streams, sorted by id. */
  readonly streams: readonly Stream[];
  /** Rows present but inactive (`active = false`). */
  readonly inactive: number;
  readonly skipped: readonly CatalogSkip[];
  /** Rows whose placement column could not be read (served without a constraint). */
  readonly badConstraints?: readonly CatalogConstraintError[];
}

export interface CatalogSource {
  readonly table: { readonly schema?: string; readonly name: string };
  readonly idColumn: string;
  /** STREAMS_PLACEMENT_COLUMN: its "key=value,..." text becomes the stream's `constraint`. */
  readonly placementColumn?: string;
}

const RESERVED = new Set(["url", "name"]);

export function qualifiedTable(t: CatalogSource["table"]): string {
  return t.schema ? `${ident(t.schema)}.${ident(t.name)}` : ident(t.name);
}

/** What changes with any insert, update or delete in the catalog table (see the header). */
export async function catalogVersion(sql: Sql, src: CatalogSource): Promise<string> {
  const rows = await sql.unsafe(`select count(*)::text || ':' || coalesce(md5(string_agg(t.xmin::text || t.ctid::text, ',' order by t.ctid)), '') as v from ${qualifiedTable(src.table)} t`);
  return String(rows[0]!.v);
}

export async function readCatalog(sql: Sql, src: CatalogSource): Promise<CatalogSnapshot> {
  let rows: { r: Record<string, unknown> }[];
  try {
    rows = (await sql.unsafe(`select to_jsonb(t) as r from ${qualifiedTable(src.table)} t`)) as unknown as {
      r: Record<string, unknown>;
    }[];
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "42P01") {
      const name = src.table.schema ? `${src.table.schema}.${src.table.name}` : src.table.name;
      throw new CatalogError(`The streams catalog table ${name} does not exist (check STREAMS_TABLE / DB_TABLE_NAME).`, { cause: err });
    }
    throw err;
  }
  return parseCatalogRows(rows.map((x) => x.r), src.idColumn, src.placementColumn);
}

/** Pure: turns catalog rows into the active stream list. Exported for property tests. */
export function parseCatalogRows(rows: readonly Record<string, unknown>[], idColumn: string, placementColumn?: string): CatalogSnapshot {
  if (rows.length > 0 && !rows.some((r) => idColumn in r)) {
    throw new CatalogError(`The streams catalog has no column ${idColumn} (check STREAMS_ID_COLUMN).`);
  }
  if (rows.length > 0 && !rows.some((r) => "url" in r)) {
    throw new CatalogError("The streams catalog has no url column.");
  }
  const candidates: { id: StreamId; row: Record<string, unknown> }[] = [];
  const skipped: CatalogSkip[] = [];
  for (const row of rows) {
    const raw = row[idColumn];
    if (raw === null || raw === undefined || (typeof raw === "string" && raw.trim() === "")) {
      skipped.push({ id: null, reason: "null id" });
      continue;
    }
    candidates.push({ id: String(raw).trim(), row });
  }
  candidates.sort((a, b) => compareIds(a.id, b.id) || String(a.row.url ?? "").localeCompare(String(b.row.url ?? "")));

  const streams: Stream[] = [];
  const seen = new Set<StreamId>();
  let inactive = 0;
  const badConstraints: CatalogConstraintError[] = [];
  for (const { id, row } of candidates) {
    if (seen.has(id)) {
      skipped.push({ id, reason: "duplicate id" });
      continue;
    }
    seen.add(id);
    const url = typeof row.url === "string" ? row.url.trim() : "";
    if (!url) {
      skipped.push({ id, reason: "missing url" });
      continue;
    }
    if (row.active === false) {
      inactive++;
      continue;
    }
    const metadata: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row)) {
      if (k !== idColumn && !RESERVED.has(k)) metadata[k] = v;
    }
    const name = typeof row.name === "string" && row.name.trim() ? row.name.trim() : id;
    const raw = placementColumn === undefined ? undefined : row[placementColumn];
    if (raw === undefined || raw === null || (typeof raw === "string" && raw.trim() === "")) {
      streams.push({ id, url, name, metadata });
      continue;
    }
    const parsed = typeof raw === "string" ? parseLabels(raw) : ({ ok: false, error: "not text" } as const);
    if (parsed.ok) streams.push({ id, url, name, metadata, constraint: parsed.labels });
    else {
      badConstraints.push({ id, value: String(typeof raw === "string" ? raw : JSON.stringify(raw)).slice(0, 200), error: `${parsed.error}; expected ${LABELS_RULE}` });
      streams.push({ id, url, name, metadata });
    }
  }
  return badConstraints.length > 0 ? { streams, inactive, skipped, badConstraints } : { streams, inactive, skipped };
}

/** Numeric ids sort numerically, then text ids lexically: the order operators expect. */
export function compareIds(a: string, b: string): number {
  const na = /^\d{1,15}$/.test(a);
  const nb = /^\d{1,15}$/.test(b);
  if (na && nb) return Number(a) - Number(b);
  if (na !== nb) return na ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** How a stream id is shown to workers: a number when it is a plain integer, else text. */
export function presentId(id: StreamId): number | string {
  return /^(0|[1-9]\d{0,14})$/.test(id) ? Number(id) : id;
}
