/**
 * A cached copy of the catalog. A failed refresh keeps the last good copy (agents keep
 * serving and hashing with it while Postgres is away) and remembers the error for /health.
 * A refresh first reads the catalog's version (shared/catalog.ts catalogVersion, one row)
 * and reads the rows again only when it changed: the version is read before the rows, so
 * a change made during a read is seen at the next refresh. A refresh never throws (load()
 * keeps the error), so one left running in the background (`get(…, { background })`) is safe.
 */
import type { Clock } from "./clock.js";
import type { Sql } from "./db.js";
import { FailureMemo, type Logger } from "./logger.js";
import { catalogVersion, readCatalog, type CatalogSnapshot, type CatalogSource } from "./catalog.js";

export class CatalogCache {
  private snap: CatalogSnapshot | undefined;
  /** The catalog version `snap` was read at (undefined: unknown, read the rows). */
  private version: string | undefined;
  private at = -Infinity;
  private inflight: Promise<CatalogSnapshot | undefined> | undefined;
  private lastSkipKey = "";
  private readonly failure = new FailureMemo();

  constructor(
    private readonly sql: Sql,
    private readonly src: CatalogSource,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Why the last refresh failed (undefined after a good one), for /health and /status. */
  get lastError(): string | undefined {
    return this.failure.message;
  }

  get current(): CatalogSnapshot | undefined {
    return this.snap;
  }

  /**
   * The catalog, refreshed when older than `maxAgeMs`. Undefined only if it was never read.
   * `background`: do not wait for that refresh (the copy held now is returned and the next
   * call sees the refresh); only a first read is waited for.
   */
  async get(maxAgeMs: number, o: { readonly background?: boolean } = {}): Promise<CatalogSnapshot | undefined> {
    if (this.snap && this.clock.now() - this.at < maxAgeMs) return this.snap;
    const refreshing = this.refresh();
    return this.snap && o.background === true ? this.snap : refreshing;
  }

  refresh(): Promise<CatalogSnapshot | undefined> {
    if (!this.inflight) {
      this.inflight = this.load().finally(() => {
        this.inflight = undefined;
      });
    }
    return this.inflight;
  }

  private async load(): Promise<CatalogSnapshot | undefined> {
    try {
      const started = this.clock.now();
      const version = await catalogVersion(this.sql, this.src).catch(() => undefined);
      if (version !== undefined && this.snap && version === this.version) {
        this.at = started;
        this.failure.succeeded();
        return this.snap;
      }
      const snap = await readCatalog(this.sql, this.src);
      this.snap = snap;
      this.version = version;
      this.at = started;
      this.failure.succeeded();
      const bad = snap.badConstraints ?? [];
      const skipKey = [...snap.skipped.map((s) => `${s.id}:${s.reason}`), ...bad.map((b) => `${b.id}:${b.value}`)].join(",");
      if (skipKey !== this.lastSkipKey && bad.length > 0) {
        this.logger.warn({ category: "STREAM", streams: bad.slice(0, 20), count: bad.length }, "catalog placement values unreadable; those streams may go to any worker");
      }
      if (skipKey !== this.lastSkipKey && snap.skipped.length > 0) {
        this.logger.warn({ category: "STREAM", skipped: snap.skipped.slice(0, 20), count: snap.skipped.length }, "catalog rows skipped");
      }
      this.lastSkipKey = skipKey;
    } catch (err) {
      if (this.failure.failed(err)) this.logger.warn({ category: "ERROR", err }, "catalog read failed; keeping the last good copy");
    }
    return this.snap;
  }
}
