/**
 * Query and path validation through @hono/zod-validator, with this API's error shape: a
 * 400 whose message names the bad field, never a 500. Bodies are read by the routes
 * themselves (readJson): workers send JSON without a JSON content type, which the
 * validator middleware would silently treat as an empty body.
 */
import { zValidator } from "@hono/zod-validator";
import type { Context } from "hono";
import { z, type ZodType } from "zod";
import { INSTANCE_ID_PATTERN, INSTANCE_ID_RULE } from "../../shared/config.js";
import { describeIssues, jsonError } from "./errors.js";

type Fail = (c: Context, message: string) => Response;
const plain: Fail = (c, message) => jsonError(c, 400, message);

/** Validates `c.req.query()`; read the result with `c.req.valid("query")`. */
export function validQuery<T extends ZodType>(schema: T, fail: Fail = plain, what = "query") {
  return zValidator("query", schema, (r, c) => {
    if (!r.success) return fail(c, `Bad ${what}: ${describeIssues(r.error.issues)}`);
  });
}

/** Validates the path parameters; read them with `c.req.valid("param")`. */
export function validParam<T extends ZodType>(schema: T, what: string, fail: Fail = plain) {
  return zValidator("param", schema, (r, c) => {
    if (!r.success) return fail(c, `Bad ${what}: ${describeIssues(r.error.issues)}`);
  });
}

/** An instance id in a path: the same rule as INSTANCE_ID. */
export const instanceId = z.string().regex(INSTANCE_ID_PATTERN, `an instance id: ${INSTANCE_ID_RULE}`);

/** A stream id in a path: catalog ids are text up to 256 characters (integers show as digits). */
export const streamIdParam = z.string().trim().min(1, "must not be empty").max(256, "at most 256 characters");
