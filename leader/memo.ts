/**
 * What lets a steady leader tick cost what changed, not what exists.
 *
 * PlanMemo: plan() (shared/placement/plan.ts) is pure, so a plan computed from the same
 * inputs is the same plan. The memo hands back the last plan when every input it reads is
 * equal to those it was computed from, and only a QUIET plan (no row operation, no version
 * bump, no member status, no health change): so a reuse writes nothing, exactly as
 * computing it again would not. Equal means:
 * - the epoch, the mode flag, the rebalance policy, REQUIRE_WORKER, honourPgCut,
 *   hashSettled, the health settings and the failure budget: by value;
 * - the catalog: the same array (the catalog cache keeps it while the catalog's version
 *   holds); the rows: the same rows version (leader/store.ts); the instances, the session
 *   stamps, the legacy streams: by value;
 * - the members: the same ids in the same order, each with the same status and a heartbeat
 *   equal in every field but those that change with every beat and that placement never
 *   reads (VOLATILE_HEARTBEAT, VOLATILE_WORKER, VOLATILE_VIEW);
 * - stream health: the same records and remembered failures in every field but their ages,
 *   which count only through the rules' own two readings of them (health-rules.ts
 *   failedLongEnough, retryDue), compared instead.
 * Anything else (a new field, a different object shape) compares as a change: the memo
 * can only miss where it could reuse, never reuse where it should not.
 *
 * RowsSummary: who owns or is promised rows, and how many each will hold, computed once
 * per rows version instead of on every tick.
 *
 * Does not: decide anything (plan.ts does), or survive a new term (the leader clears it).
 */
import type { MemberView } from "../shared/membership.js";
import type { Plan, PlanInput, Row } from "../shared/placement/plan.js";
import { failedLongEnough, retryDue } from "../shared/placement/health-rules.js";
import type { ChargedFailure, HealthRecord } from "../shared/stream-health-store.js";
import type { StreamId } from "../shared/types.js";
import { plan } from "../shared/placement/plan.js";

/**
 * Heartbeat fields that change with every beat and that placement never reads. A field
 * plan.ts (or what it calls) reads must not be listed here; test/unit/leader-memo.test.ts
 * checks that plan's result does not depend on these.
 */
export const VOLATILE_HEARTBEAT: ReadonlySet<string> = new Set(["seq", "states", "pgOk", "redisOk"]);
/** The same, inside the heartbeat's `worker` (`ok` is read: REQUIRE_WORKER). */
export const VOLATILE_WORKER: ReadonlySet<string> = new Set(["lastSeenMsAgo", "processed", "errors"]);
/** The same, of the tracker's member view (`status` is read). */
export const VOLATILE_VIEW: ReadonlySet<string> = new Set(["silentMs", "present", "firstSeenAt"]);

/** What a memo compares the next input with (copies of what the caller may change later). */
interface Seen {
  readonly input: PlanInput;
  readonly rowsVersion: number;
  readonly instances: ReadonlyMap<string, unknown>;
  readonly stamped: ReadonlyMap<string, string> | undefined;
}

export class PlanMemo {
  private last: { seen: Seen; plan: Plan } | undefined;
  /** Plans reused and computed (for the tests and the benchmark). */
  hits = 0;
  misses = 0;

  /** A new term: nothing computed before counts. */
  clear(): void {
    this.last = undefined;
  }

  /** plan(input), reused when the last one was quiet and computed from equal inputs. */
  plan(input: PlanInput, rowsVersion: number): Plan {
    const last = this.last;
    if (last && sameInputs(last.seen, input, rowsVersion)) {
      this.hits++;
      return last.plan;
    }
    this.misses++;
    const p = plan(input);
    this.last = quiet(p) ? { seen: { input, rowsVersion, instances: new Map(input.instances), stamped: input.stamped && new Map(input.stamped) }, plan: p } : undefined;
    return p;
  }
}

/** A plan that changes nothing: writing it would write nothing. */
export function quiet(p: Plan): boolean {
  return p.ops.length === 0 && p.bump.size === 0 && p.statuses.size === 0 && p.healthOps.length === 0;
}

function sameInputs(a: Seen, b: PlanInput, rowsVersion: number): boolean {
  const x = a.input;
  return (
    x.epoch === b.epoch &&
    x.flag === b.flag &&
    x.requireWorker === b.requireWorker &&
    x.honourPgCut === b.honourPgCut &&
    x.hashSettled === b.hashSettled &&
    x.catalog === b.catalog &&
    x.rows === b.rows &&
    a.rowsVersion === rowsVersion &&
    deepEqual(x.policy, b.policy) &&
    sameMap(a.instances, b.instances, deepEqual) &&
    sameOptionalMap(a.stamped, b.stamped) &&
    sameOptionalMap(x.legacy, b.legacy) &&
    sameMembers(x.members, b.members) &&
    sameHealth(x.health, b.health)
  );
}

function sameOptionalMap<V>(a: ReadonlyMap<string, V> | undefined, b: ReadonlyMap<string, V> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return sameMap(a, b, (u, v) => u === v);
}

/** Same keys and equal values (order aside: plan only looks values up). */
function sameMap<V>(a: ReadonlyMap<string, V>, b: ReadonlyMap<string, V>, eq: (x: V, y: V) => boolean): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    if (!b.has(k) || !eq(v, b.get(k)!)) return false;
  }
  return true;
}

/** Same members in the same order (plan iterates them), each equal but for the volatile fields. */
function sameMembers(a: ReadonlyMap<string, MemberView>, b: ReadonlyMap<string, MemberView>): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  const ib = b.values();
  for (const x of a.values()) {
    const y = ib.next().value as MemberView;
    if (x !== y && !sameFields(x, y, VOLATILE_VIEW, (k, u, v) => (k === "hb" ? sameHeartbeat(u, v) : deepEqual(u, v)))) return false;
  }
  return true;
}

function sameHeartbeat(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!isObject(a) || !isObject(b)) return false;
  return sameFields(a, b, VOLATILE_HEARTBEAT, (k, u, v) => (k === "worker" ? isObject(u) && isObject(v) && sameFields(u, v, VOLATILE_WORKER, (_, p, q) => deepEqual(p, q)) : deepEqual(u, v)));
}

/** The same own keys but those in `skip` (present or not), with equal values. */
function sameFields(a: object, b: object, skip: ReadonlySet<string>, eq: (k: string, u: unknown, v: unknown) => boolean): boolean {
  let n = 0;
  for (const k of Object.keys(a)) {
    if (skip.has(k)) continue;
    n++;
    if (!Object.hasOwn(b, k) || !eq(k, (a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  let m = 0;
  for (const k of Object.keys(b)) if (!skip.has(k)) m++;
  return n === m;
}

function sameHealth(a: PlanInput["health"], b: PlanInput["health"]): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.budget !== b.budget || !deepEqual(a.settings, b.settings)) return false;
  const va = a.view;
  const vb = b.view;
  if (va === undefined || vb === undefined) return va === vb;
  const s = b.settings;
  return sameMap(va.records, vb.records, (x, y) => sameRecord(x, y, s)) && sameMap(va.failures, vb.failures, sameFailures);
}

/** Equal but for the ages, compared as the rules read them. */
function sameRecord(x: HealthRecord, y: HealthRecord, s: NonNullable<PlanInput["health"]>["settings"]): boolean {
  if (failedLongEnough(x, s) !== failedLongEnough(y, s) || retryDue(x) !== retryDue(y)) return false;
  return sameFields(x, y, AGES, (_, u, v) => u === v);
}

function sameFailures(a: readonly ChargedFailure[], b: readonly ChargedFailure[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameFields(a[i]!, b[i]!, AGES, (_, u, v) => u === v)) return false;
  return true;
}

/** The ages in a health view (by PostgreSQL's clock, different at every read). */
const AGES: ReadonlySet<string> = new Set<keyof HealthRecord | keyof ChargedFailure>(["failingForMs", "retryInMs", "agoMs"]);

function isObject(v: unknown): v is object {
  return typeof v === "object" && v !== null;
}

/** Structural equality of JSON-like values (arrays in order, objects by own keys). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (!isObject(a) || !isObject(b)) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (a instanceof Map || b instanceof Map || a instanceof Set || b instanceof Set) return false;
  return sameFields(a, b, NOTHING, (_, u, v) => deepEqual(u, v));
}
const NOTHING: ReadonlySet<string> = new Set();

/** Who owns or is promised rows, and how many each will hold, once per rows version. */
export interface RowsSummary {
  /** Owners of rows (the tracker watches them). */
  readonly owners: ReadonlySet<string>;
  /** Owners and handoff targets (a member named by a row is not forgotten). */
  readonly named: ReadonlySet<string>;
  /** Rows per member once the handoffs complete (`next`, else `owner`). */
  readonly owned: ReadonlyMap<string, number>;
}

export class RowsSummaries {
  private last: { version: number; summary: RowsSummary } | undefined;

  of(rows: ReadonlyMap<StreamId, Pick<Row, "owner" | "next">>, version: number): RowsSummary {
    if (this.last?.version === version) return this.last.summary;
    const owners = new Set<string>();
    const named = new Set<string>();
    const owned = new Map<string, number>();
    for (const r of rows.values()) {
      owners.add(r.owner);
      named.add(r.owner);
      if (r.next) named.add(r.next);
      const o = r.next ?? r.owner;
      owned.set(o, (owned.get(o) ?? 0) + 1);
    }
    const summary = { owners, named, owned };
    this.last = { version, summary };
    return summary;
  }

  clear(): void {
    this.last = undefined;
  }
}
