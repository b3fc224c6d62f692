/**
 * What a hashing agent remembers of its view between two reconciles (agent/reconcile.ts):
 * the inputs of hashed ownership (shared/placement/hash-owners.ts), when they were first
 * seen, the owners computed from them, and since when each stream has been this member's
 * without a break. PURE: each call returns a new value; the caller keeps it.
 *
 * Guarantees:
 * - `observe` reports the inputs as changed exactly when the live members (ids, hashing
 *   weights, labels, held lists), the catalog (ids and constraints), or the policy
 *   differ from the last observed ones; `changedAt` is the local time it first saw them.
 * - `ownersOf` runs the assignor only when the inputs changed since it last ran: a settled
 *   view costs a comparison of the held lists (O(streams)), not an assignor run.
 * - `mine[s]` is the time since which every view observed gave s to this member: the
 *   time the current inputs were first seen, or earlier if the owners computed for each
 *   view observed in between all gave it s. Inputs observed without computing their
 *   owners break every run.
 * Does not: read the clock (the caller passes `now`), nor decide what may be taken
 * (agent/reconcile.ts does, from `mine`).
 */
import { hashingBasis, hashingMembers, hashOwners, type HashingMember, type HashingPolicy } from "../shared/placement/hash-owners.js";
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
  /** hashingBasis of the inputs' catalog and policy: what this agent publishes in its heartbeat. */
  readonly basis: string;
  /** Local time these inputs were first seen. */
  readonly changedAt: number;
  /** Owners computed from these inputs (undefined: not computed yet). */
  readonly owners: ReadonlyMap<StreamId, string> | undefined;
  /** The streams the owners give this member, each with the time since which they have (see above). */
  readonly mine: ReadonlyMap<StreamId, number>;
}

/** The view after one more read: the same inputs keep their memo and their age. */
export function observe(prev: HashedView | undefined, now: number, catalog: readonly Stream[], snap: Snapshot, policy: HashingPolicy): HashedView {
  const members = hashingMembers(snap.members.values(), snap.requireWorker).sort((a, b) => cmp(a.id, b.id));
  const inputs: HashedInputs = { catalog, members, policy };
  if (prev && sameInputs(prev.inputs, inputs)) return { ...prev, inputs };
  const sameBasis = !!prev && prev.inputs.catalog === catalog && samePolicy(prev.inputs.policy, policy);
  const basis = sameBasis ? prev.basis : hashingBasis(catalog, policy);
  // New inputs: a stream's run goes on only if the previous inputs' owners were computed.
  return { inputs, basis, changedAt: now, owners: undefined, mine: prev?.owners ? prev.mine : new Map() };
}

/** The view with the owners for its inputs (memoized), and `me`'s runs brought up to date. */
export function ownersOf(v: HashedView, me: string): HashedView {
  if (v.owners) return v;
  const owners = hashOwners(v.inputs.catalog, v.inputs.members, v.inputs.policy);
  const mine = new Map<StreamId, number>();
  for (const [s, o] of owners) if (o === me) mine.set(s, v.mine.get(s) ?? v.changedAt);
  return { ...v, owners, mine };
}

function samePolicy(a: HashingPolicy, b: HashingPolicy): boolean {
  return a.imbalanceThreshold === b.imbalanceThreshold && a.maxStreamDifference === b.maxStreamDifference;
}

function sameInputs(a: HashedInputs, b: HashedInputs): boolean {
  if (!samePolicy(a.policy, b.policy)) return false;
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
