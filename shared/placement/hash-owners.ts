/**
 * Who owns each stream by hashing: the ONE function the hashing agents
 * (agent/reconcile.ts) and the leader's plan (./plan.ts, for members serving by hashing)
 * use, so that both compute the same owners from the same view. PURE.
 *
 * Guarantees: an unconstrained stream goes to weighted rendezvous hashing's owner over
 * the members with weight > 0; a stream with a placement constraint goes to the member
 * hashing prefers among those that satisfy it (shared/labels.ts), or to nobody (-1).
 * Does not: know about failures or quarantine (those need the leader: hashed mode
 * serves a failing stream where it hashes).
 */
import { satisfies, type Labels } from "../labels.js";
import type { Stream } from "../types.js";
import { hashString, Rendezvous } from "./hash.js";

export interface HashingMember {
  readonly id: string;
  readonly weight: number;
  readonly labels?: Labels;
}

export function hashOwners(streams: readonly Stream[], members: readonly HashingMember[]): { readonly hrw: Rendezvous; readonly owners: Int32Array } {
  const hrw = new Rendezvous(members);
  const owners = hrw.ownerIndexes(streams.map((s) => hashString(s.id)));
  if (streams.some((s) => s.constraint !== undefined)) {
    const labels = new Map(members.map((m) => [m.id, m.labels]));
    const byKey = new Map<string, Int32Array>();
    streams.forEach((s, k) => {
      const c = s.constraint;
      if (!c || Object.keys(c).length === 0) return;
      const key = JSON.stringify(Object.entries(c).sort());
      let allowed = byKey.get(key);
      if (!allowed) {
        const list = hrw.ids.map((id, i) => (satisfies(labels.get(id), c) ? i : -1)).filter((i) => i >= 0);
        byKey.set(key, (allowed = Int32Array.from(list)));
      }
      owners[k] = hrw.bestAmong(hashString(s.id), allowed, allowed.length);
    });
  }
  return { hrw, owners };
}
