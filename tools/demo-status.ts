/**
 * The demo's one-line status. Pure: samples in, one line out.
 *
 *   [14:02:11] leader demo-2 (epoch 3) · orchestrated · served 36/36 · overlaps 0 · demo-1 16/20 · demo-2* 12/15 · demo-3 8/10
 *
 * "served" counts the distinct streams the simulated workers process at this instant
 * against the active catalog; "overlaps" counts streams processed by two workers at once
 * (the safety model says it is always 0); `*` marks the leader; "a/b" is streams/capacity.
 */
export interface AgentSample {
  readonly id: string;
  readonly capacity: number;
  readonly up: boolean;
  /** What the simulated worker beside this agent processes now. */
  readonly serving: readonly string[];
  readonly mode?: string;
  readonly leader?: string | null;
  readonly epoch?: number | null;
  readonly isLeader?: boolean;
}

export function statusLine(at: Date, samples: readonly AgentSample[], catalog: number | undefined): string {
  const time = at.toTimeString().slice(0, 8);
  const byStream = new Map<string, number>();
  for (const s of samples) for (const id of s.serving) byStream.set(id, (byStream.get(id) ?? 0) + 1);
  const overlaps = [...byStream.values()].filter((n) => n > 1).length;
  const up = samples.filter((s) => s.up);
  const leader = up.find((s) => s.isLeader)?.id ?? up.find((s) => s.leader)?.leader ?? null;
  const epoch = up.find((s) => s.epoch !== null && s.epoch !== undefined)?.epoch;
  const modes = [...new Set(up.map((s) => s.mode).filter(Boolean))];
  const parts = [
    leader ? `leader ${leader}${epoch !== undefined && epoch !== null ? ` (epoch ${epoch})` : ""}` : "no leader yet",
    modes.length ? modes.join("+") : "starting",
    `served ${byStream.size}/${catalog ?? "?"}`,
    `overlaps ${overlaps}`,
    ...samples.map((s) => (s.up ? `${s.id}${s.id === leader ? "*" : ""} ${s.serving.length}/${s.capacity}` : `${s.id} down`)),
  ];
  return `[${time}] ${parts.join(" · ")}`;
}
