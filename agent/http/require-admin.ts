/**
 * requireAdmin({ token }): the middleware in front of every admin route.
 *
 * - No token configured means every admin call is REFUSED (403), never open.
 * - A missing or wrong bearer token is a 401 with a WWW-Authenticate header.
 * - The token is compared in constant time (both sides hashed to equal length first,
 *   then crypto.timingSafeEqual).
 * - Every call is counted by action and result; refusals are logged without the token.
 */
import crypto from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import type { Logger } from "../../shared/logger.js";
import type { Metrics } from "../../shared/metrics.js";
import { jsonError } from "./errors.js";

const digest = (s: string) => crypto.createHash("sha256").update(s, "utf8").digest();

/** True when `given` equals `expected`, in time independent of where they differ. */
export function tokenMatches(given: string, expected: string): boolean {
  return crypto.timingSafeEqual(digest(given), digest(expected));
}

export type AdminAction = "drain" | "undrain" | "rebalance" | "dry_run" | "mode" | "unknown";

function actionOf(c: Context): AdminAction {
  const p = c.req.path;
  if (p.endsWith("/undrain")) return "undrain";
  if (p.endsWith("/drain")) return "drain";
  if (p === "/rebalance") return /^(1|true|yes)$/i.test(c.req.query("dry_run") ?? "") ? "dry_run" : "rebalance";
  if (p === "/mode") return "mode";
  return "unknown";
}

export interface RequireAdminOptions {
  /** ADMIN_TOKEN; undefined disables every admin call. */
  readonly token: string | undefined;
  readonly metrics?: Pick<Metrics, "adminRequests">;
  readonly logger?: Pick<Logger, "warn">;
}

export function requireAdmin({ token, metrics, logger }: RequireAdminOptions): MiddlewareHandler {
  return async (c, next) => {
    const action = actionOf(c);
    if (!token) {
      metrics?.adminRequests.inc({ action, result: "disabled" });
      return jsonError(c, 403, "Admin endpoints are disabled on this agent: no ADMIN_TOKEN is configured. Set ADMIN_TOKEN on the agent to enable them.");
    }
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m || !tokenMatches(m[1]!, token)) {
      metrics?.adminRequests.inc({ action, result: "unauthorized" });
      logger?.warn({ category: "INSTANCE", action, path: c.req.path, reason: m ? "wrong token" : "no bearer token" }, "admin request refused");
      c.header("WWW-Authenticate", 'Bearer realm="fingerv7-sidecar"');
      return jsonError(c, 401, m ? "Invalid admin token." : "Admin endpoints need the header Authorization: Bearer <ADMIN_TOKEN>.");
    }
    await next();
    const s = c.res.status;
    const result = s < 300 ? "ok" : s === 400 ? "bad_request" : s === 404 ? "not_found" : s === 409 ? "conflict" : "error";
    metrics?.adminRequests.inc({ action, result });
  };
}
