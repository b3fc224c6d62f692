/**
 * What a hashing agent remembers of its view between two reconciles (agent/reconcile.ts):
 * the inputs of hashed ownership (shared/placement/hash-owners.ts), when they last
 * changed, the owners computed from them, and since when each stream it wants but does
 * not offer has been wanted. PURE: each call returns a new value; the caller keeps it.
 *
 * Guarantees:
 * - `observe` reports the inputs as changed exactly when the live members (ids, hashing
 *   weights, labels, held lists), the catalog (ids and constraints), or the policy
 *   differ from the last observed ones; `changedAt` is the local time it first saw them.
 * - `ownersOf` runs the assignor only when the inputs changed since it last ran: a settled
 *   view costs a comparison of the held lists (O(streams)), not an assignor run.
 * Does not: read the clock (the caller passes `now`), nor decide what may be taken
 * (agent/reconcile.ts does, from `changedAt` and `wantedSince`).
 */
import { hashingMembers, hashOwners, type HashingMember, type HashingPolicy } from "../shared/placement/hash-owners.js";
import { cmp } from "../shared/placement/order.js";
import type { Snapshot } from "../shared/membership.js";
import type { Stream, StreamId } from "../shared/types.js";

export interface HashedInputs {
  readonly catalog: readonly Stream[];
  /** Live members, by id. */
  readonly members: readonly HashingMember[];
  readonly policy: HashingPolicy;
}

export interface HashedView {
  readonly inputs: HashedInputs;
  /** Local time these inputs were first seen. */
  readonly changedAt: number;
  /** Owners computed from these inputs (undefined: not computed yet). */
  readonly owners: ReadonlyMap<StreamId, string> | undefined;
  /** Streams this member wants and does not offer yet: since when, without a break. */
  readonly wantedSince: ReadonlyMap<StreamId, number>;
}

/** The view after one more read: the same inputs keep their memo and their age. */
export function observe(prev: HashedView | undefined, now: number, catalog: readonly Stream[], snap: Snapshot, policy: HashingPolicy): HashedView {
  const members = hashingMembers(snap.members.values(), snap.requireWorker).sort((a, b) => cmp(a.id, b.id));
  const inputs: HashedInputs = { catalog, members, policy };
  if (prev && sameInputs(prev.inputs, inputs)) return { ...prev, inputs };
  return { inputs, changedAt: now, owners: undefined, wantedSince: prev?.wantedSince ?? new Map() };
}

/** The owners for the view's inputs, and the view carrying them (memoized). */
export function ownersOf(v: HashedView): { readonly view: HashedView; readonly owners: ReadonlyMap<StreamId, string> } {
  if (v.owners) return { view: v, owners: v.owners };
  const owners = hashOwners(v.inputs.catalog, v.inputs.members, v.inputs.policy);
  return { view: { ...v, owners }, owners };
}

function sameInputs(a: HashedInputs, b: HashedInputs): boolean {
  if (a.policy.imbalanceThreshold !== b.policy.imbalanceThreshold || a.policy.maxStreamDifference !== b.policy.maxStreamDifference) return false;
  if (a.members.length !== b.members.length || a.catalog.length !== b.catalog.length) return false;
  for (let i = 0; i < a.members.length; i++) {
    const x = a.members[i]!;
    const y = b.members[i]!;
    if (x.id !== y.id || x.weight !== y.weight || !sameLabels(x.labels, y.labels) || !sameList(x.held, y.held)) return false;
  }
  if (a.catalog !== b.catalog) {
    for (let k = 0; k < a.catalog.length; k++) {
      const x = a.catalog[k]!;
      const y = b.catalog[k]!;
      if (x.id !== y.id || !sameLabels(x.constraint, y.constraint)) return false;
    }
  }
  return true;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameLabels(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined): boolean {
  if (a === b) return true;
  const ka = a ? Object.keys(a) : [];
  const kb = b ? Object.keys(b) : [];
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (a![k] !== b?.[k]) return false;
  return true;
}
