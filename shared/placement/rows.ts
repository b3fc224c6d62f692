/**
 * The leader's assignment rows and instance rows as the plan reads them, and the row
 * operations it writes (./plan.ts re-exports them). Types only.
 */
import type { MoveReason, StreamId } from "../types.js";

export interface Row {
  readonly stream: StreamId;
  readonly owner: string;
  readonly state: "active" | "revoking";
  readonly next: string | null;
  readonly revokeVersion: number | null;
  readonly reason: MoveReason;
  readonly url: string;
  readonly name: string;
  readonly metadata: Readonly<Record<string, unknown>>;
}

export interface InstanceRow {
  readonly id: string;
  readonly draining: boolean;
  readonly version: number;
  readonly epoch: number;
  readonly status: string;
}

export type RowOp =
  | { readonly op: "put"; readonly row: Row; readonly bump: string; readonly reason: MoveReason; readonly from: string | null }
  | { readonly op: "revoke"; readonly stream: StreamId; readonly owner: string; readonly next: string | null; readonly reason: MoveReason }
  | { readonly op: "retarget"; readonly stream: StreamId; readonly next: string | null }
  | { readonly op: "delete"; readonly stream: StreamId; readonly owner: string; readonly reason: MoveReason };
