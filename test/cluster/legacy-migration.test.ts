/**
 * Migrating a live fleet from the old static hashing to the sidecar, one instance at a
 * time, and rolling it back the same way.
 *
 * Legacy fingerv7 instances (SERVER_ID 1..3, TOTAL_SERVERS=3) are simulated by what the
 * leader sees of them: a row in `server_heartbeats` refreshed while the instance runs, and
 * the streams `int(index) % 3 == SERVER_ID - 1` it processes. Migrated instances are real
 * agent processes with a worker beside them: instances 1 and 3 use the lease-aware
 * worker (/v1/assignment), instance 2 the older worker API (/api/streams/assign, polled,
 * no lease), as today's fingerv7 build does.
 *
 * After every step settles, every stream has exactly one owner: the legacy instance that
 * the rule names, if that instance is live and not migrated, or exactly one sidecar
 * worker. Throughout, no two sidecar workers ever serve one stream.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { legacyServerFor } from "../../shared/legacy.js";
import { Cluster, Observer, waitFor } from "../helpers/cluster.js";
import { REDIS_URL, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";

const TOTAL_SERVERS = 3;
const STREAMS = 30;
const LEGACY_TIMEOUT_S = 2;
const IDS = ["1", "2", "3"];
const OLDER_API = new Set(["2"]);
const catalog = Array.from({ length: STREAMS }, (_, i) => String(i));

function note(line: string): void {
  // eslint-disable-next-line no-console
  console.log(`[legacy-migration] ${line}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A worker of today's fingerv7 build: registers, heartbeats, polls GET /api/streams/assign
 * and processes exactly the returned set; when the sidecar cannot be reached it keeps
 * what it has (it knows no lease). On shutdown it releases its streams.
 */
class OlderApiWorker {
  serving: ReadonlySet<string> = new Set();
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly id: string,
    private readonly capacity: number,
    private readonly pollMs = 300,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  private async post(path: string, body: unknown): Promise<Response> {
    return fetch(`${this.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const r = await this.post("/api/workers/register", { instance_id: this.id, worker_type: "fingerv7", capacity: this.capacity, status: "active", metadata: { version: "7-test", capabilities: ["audio"] } }).catch(() => undefined);
      if (r?.ok) break;
      await sleep(this.pollMs);
    }
    let lastBeat = 0;
    while (!this.stopped) {
      try {
        if (performance.now() - lastBeat > 1000) {
          lastBeat = performance.now();
          await this.post("/api/heartbeat", { worker_instance_id: this.id, status: "active", current_load: this.serving.size, available_capacity: Math.max(0, this.capacity - this.serving.size) });
        }
        const r = await fetch(`${this.url}/api/streams/assign?worker_id=${this.id}&capacity=${this.capacity}&worker_type=fingerv7`, { signal: AbortSignal.timeout(5000) });
        if (r.ok && !this.stopped) {
          const b = (await r.json()) as { assigned_streams: (number | string)[] };
          this.serving = new Set(b.assigned_streams.map(String));
        }
      } catch {
        // Sidecar unreachable: today's worker keeps processing what it has.
      }
      await sleep(this.pollMs);
    }
  }

  /** Shutdown as fingerv7 does it: give the streams back, stop processing. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    const mine = [...this.serving];
    this.serving = new Set();
    if (mine.length > 0) await this.post("/streams/release", { server_id: this.id, stream_ids: mine.map(Number) }).catch(() => undefined);
  }
}

describe("legacy-aware migration", { timeout: 150_000 }, () => {
  let db: TestDatabase;
  let cluster: Cluster;
  let observer: Observer;
  let refresher: NodeJS.Timeout | undefined;
  /** Instances running in legacy mode (their process writes its heartbeat row). */
  const legacyRunning = new Set<string>();
  /** Instances migrated: a sidecar with a worker. */
  const sidecars = new Set<string>();
  const olderWorkers = new Map<string, OlderApiWorker>();
  const t0 = performance.now();

  async function heartbeatRows(ids: Iterable<string>): Promise<void> {
    for (const id of ids) {
      await db.sql`insert into server_heartbeats (server_id, last_heartbeat, status, ip_address, info)
                   values (${id}, now(), 'online', '10.0.0.' || ${id}, ${db.sql.json({ server_id: Number(id), total_servers: TOTAL_SERVERS })})
                   on conflict (server_id) do update set last_heartbeat = now(), status = 'online'`;
    }
  }

  beforeAll(async () => {
    db = await createTestDatabase("legacymig");
    await db.sql.unsafe(`create table streams (url text, name text, sheet text, cidade text, estado text, regiao text, segmento text, index integer)`);
    await db.sql.unsafe(
      `insert into streams (url, name, sheet, cidade, estado, regiao, segmento, index)
       select 'http://radio.example.invalid/r' || g, 'Radio ' || g, 'Radios', 'Curitiba', 'PR', 'Sul', 'Popular', g from generate_series(0, ${STREAMS - 1}) g`,
    );
    await db.sql.unsafe(`create table server_heartbeats (server_id varchar primary key, last_heartbeat timestamptz, status varchar, ip_address varchar, info jsonb)`);
    for (const id of IDS) legacyRunning.add(id);
    await heartbeatRows(legacyRunning);
    // Legacy processes write their row every 60 s in production; scaled down here.
    refresher = setInterval(() => void heartbeatRows([...legacyRunning]).catch(() => {}), 400);
    cluster = new Cluster({
      databaseUrl: db.url,
      redisUrl: REDIS_URL,
      prefix: uniqueName("legacymig"),
      env: { STREAMS_ID_COLUMN: "index", LEGACY_TOTAL_SERVERS: String(TOTAL_SERVERS), LEGACY_HEARTBEAT_TIMEOUT: String(LEGACY_TIMEOUT_S), SHUTDOWN_DRAIN: "true" },
    });
    observer = new Observer(() =>
      [...cluster.agents.values()].map((a) => ({ id: a.id, serving: OLDER_API.has(a.id) ? (olderWorkers.get(a.id)?.serving ?? new Set<string>()) : (a.worker?.serving ?? new Set<string>()) })),
    );
    observer.start(catalog);
  });

  afterAll(async () => {
    if (refresher) clearInterval(refresher);
    observer?.stop();
    for (const w of olderWorkers.values()) await w.stop();
    await cluster?.close();
    await db?.drop();
  });

  /** Live legacy instances as the leader must see them: a fresh row and no live sidecar of that id. */
  async function liveLegacy(): Promise<Set<string>> {
    const rows = await db.sql`select server_id from server_heartbeats where last_heartbeat > now() - make_interval(secs => ${LEGACY_TIMEOUT_S})`;
    return new Set(rows.map((r) => String(r.server_id)).filter((id) => !sidecars.has(id)));
  }

  /** Every stream's owners; a list of problems (empty when each has exactly one). */
  async function ownership(): Promise<{ problems: string[]; bySidecar: Map<string, number>; byLegacy: Map<string, number> }> {
    const legacy = await liveLegacy();
    const served = new Map<string, string[]>();
    for (const a of cluster.agents.values()) {
      const set = OLDER_API.has(a.id) ? olderWorkers.get(a.id)?.serving : a.worker?.serving;
      for (const s of set ?? []) (served.get(s) ?? served.set(s, []).get(s)!).push(`sidecar ${a.id}`);
    }
    const problems: string[] = [];
    const bySidecar = new Map<string, number>();
    const byLegacy = new Map<string, number>();
    for (const s of catalog) {
      const owners = [...(served.get(s) ?? [])];
      const rule = legacyServerFor(s, TOTAL_SERVERS)!;
      if (legacy.has(rule)) owners.push(`legacy ${rule}`);
      if (owners.length !== 1) problems.push(`stream ${s}: ${owners.length === 0 ? "no owner" : owners.join(" + ")}`);
      else if (owners[0]!.startsWith("legacy")) byLegacy.set(rule, (byLegacy.get(rule) ?? 0) + 1);
      else bySidecar.set(owners[0]!.slice(8), (bySidecar.get(owners[0]!.slice(8)) ?? 0) + 1);
    }
    return { problems, bySidecar, byLegacy };
  }

  /** Waits until ownership has been exact and unchanged for a while, then asserts it. */
  async function settle(step: string): Promise<void> {
    const start = performance.now();
    let key = "";
    let since = performance.now();
    let last: Awaited<ReturnType<typeof ownership>> | undefined;
    try {
      await waitFor(
        async () => {
          last = await ownership();
          const k = `${last.problems.join("|")}#${[...observer.served()].sort().join(",")}`;
          if (k !== key) {
            key = k;
            since = performance.now();
          }
          return last.problems.length === 0 && performance.now() - since >= 1500;
        },
        45_000,
        `${step}: every stream with exactly one owner`,
        100,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; last problems: ${last?.problems.slice(0, 8).join("; ")}`);
    }
    const final = await ownership();
    expect(final.problems, step).toEqual([]);
    expect(observer.overlaps, `${step}: two sidecar workers served one stream`).toEqual([]);
    const fmt = (m: Map<string, number>) => [...m].sort().map(([id, n]) => `${id}:${n}`).join(" ") || "-";
    note(`${step}: settled in ${((performance.now() - start) / 1000).toFixed(1)} s; legacy ${fmt(final.byLegacy)}; sidecars ${fmt(final.bySidecar)}`);
  }

  async function migrate(id: string): Promise<void> {
    legacyRunning.delete(id); // the legacy process stops; its row ages out or is superseded by the sidecar
    if (OLDER_API.has(id)) {
      const a = await cluster.start(id, { capacity: 30, worker: false });
      const w = new OlderApiWorker(a.url, `fingerv7-${id}`, 30);
      olderWorkers.set(id, w);
      w.start();
    } else {
      await cluster.start(id, { capacity: 30 });
    }
    sidecars.add(id);
  }

  /** Rolls instance `id` back: its worker and sidecar stop, then a legacy process starts. Returns the hand-back time. */
  async function rollback(id: string): Promise<number> {
    const a = cluster.get(id);
    const older = olderWorkers.get(id);
    if (older) {
      await older.stop(); // fingerv7 releases its streams on shutdown
      olderWorkers.delete(id);
    }
    a.proc.kill("SIGTERM"); // the sidecar hands off what is left, then exits
    await a.exited;
    await a.worker?.stop();
    cluster.agents.delete(id);
    sidecars.delete(id);
    // The legacy process starts: it writes its row and processes its rule's streams at once.
    const rule = catalog.filter((s) => legacyServerFor(s, TOTAL_SERVERS) === id);
    legacyRunning.add(id);
    await heartbeatRows([id]);
    const started = performance.now();
    await waitFor(() => rule.every((s) => !observer.served().has(s)), 30_000, `the sidecars to let go of legacy ${id}'s streams`, 20);
    return performance.now() - started;
  }

  it("all legacy: the static rule owns everything", async () => {
    await settle("all legacy");
  });

  it("migrates a first instance (the pilot): it serves exactly what its legacy process did", async () => {
    await migrate("1");
    await settle("migrated 1");
    // The operator's views show the legacy members and what they own, not "unassigned".
    const url = cluster.get("1").url;
    const ruleOf = (ids: string[]) => catalog.filter((s) => ids.includes(legacyServerFor(s, TOTAL_SERVERS)!)).length;
    await waitFor(async () => {
      const v = (await (await fetch(`${url}/streams/status`)).json()) as { streams: { legacy: number; unassigned: number } };
      return v.streams.legacy === ruleOf(["2", "3"]) && v.streams.unassigned === 0;
    }, 30_000, "/streams/status to count the legacy streams");
    const inst = (await (await fetch(`${url}/instances`)).json()) as { instances: { instance_id: string; status: string; current_streams: number }[] };
    const byId = new Map(inst.instances.map((i) => [i.instance_id, i]));
    expect(byId.get("2")?.status).toBe("legacy");
    expect(byId.get("3")?.status).toBe("legacy");
    expect(byId.get("2")?.current_streams).toBe(ruleOf(["2"]));
    expect([...(cluster.get("1").worker?.serving ?? [])].sort()).toEqual(catalog.filter((s) => Number(s) % TOTAL_SERVERS === 0).sort());
  });

  it("a legacy instance that goes silent has its streams served by the sidecars; when it is back they return to it", async () => {
    const rule = catalog.filter((s) => legacyServerFor(s, TOTAL_SERVERS) === "3");
    legacyRunning.delete("3"); // legacy 3 crashes: its row stops being refreshed
    const t = performance.now();
    await waitFor(() => rule.every((s) => observer.served().has(s)), 30_000, "legacy 3's streams to be served by a sidecar", 20);
    note(`legacy 3 silent: its streams served by a sidecar ${((performance.now() - t) / 1000).toFixed(2)} s after its last heartbeat row (LEGACY_HEARTBEAT_TIMEOUT ${LEGACY_TIMEOUT_S} s)`);
    await settle("legacy 3 silent");
    legacyRunning.add("3"); // it restarts and processes its rule's streams again
    await heartbeatRows(["3"]);
    await waitFor(() => rule.every((s) => !observer.served().has(s)), 30_000, "the sidecars to hand legacy 3's streams back", 20);
    await settle("legacy 3 back");
  });

  it("migrates the rest one instance at a time with every stream owned exactly once at every step", async () => {
    for (const id of IDS.filter((x) => !sidecars.has(x))) {
      await migrate(id);
      await settle(`migrated ${[...sidecars].join(",")}`);
    }
    const all = await ownership();
    expect(all.byLegacy.size).toBe(0);
    expect([...all.bySidecar.values()].reduce((x, y) => x + y, 0)).toBe(STREAMS);
  });

  it("a heartbeat row written by an instance that is now a sidecar changes nothing", async () => {
    const before = [...observer.served()].sort().join(",");
    await heartbeatRows(IDS);
    await sleep(2500);
    expect([...observer.served()].sort().join(",")).toBe(before);
    await settle("stray legacy rows of migrated instances");
  });

  it("rolls back one instance at a time to the static rule, again with exactly one owner per stream", async () => {
    const handBack: string[] = [];
    for (const id of [...IDS].reverse()) {
      const ms = await rollback(id);
      handBack.push(`${id}: ${(ms / 1000).toFixed(2)} s`);
      await settle(`rolled back ${id}; sidecars left: ${[...sidecars].join(",") || "none"}`);
    }
    note(`hand-back after a legacy process starts (overlap if it processes at once): ${handBack.join(", ")}`);
    const all = await ownership();
    expect(all.bySidecar.size).toBe(0);
    expect([...all.byLegacy.values()]).toEqual([10, 10, 10]);
    expect(observer.overlaps).toEqual([]);
    note(`whole walk: ${((performance.now() - t0) / 1000).toFixed(1)} s, ${observer.samples} samples, ${observer.overlaps.length} overlaps between sidecar workers`);
  });
});
