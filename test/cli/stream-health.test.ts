/**
 * fingerctl's stream-health commands: `streams --failing`, `stream ID`, `retry ID`.
 * - the readable views, from answers shaped like the operator API's (pure formatting);
 * - against real in-process agents (PostgreSQL, Redis): a worker reports a stream failing,
 *   fingerctl shows it with its last error, `stream ID` tells its story, `retry ID` is an
 *   admin call, and an unknown stream or a missing token is a clear refusal (exit code 1).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../agent/cli.js";
import { formatFailing, formatStream, labelsCell, oneLine, workerCell } from "../../agent/cli-streams.js";
import { streamsStatusBody, type StreamsStatusBody } from "../../shared/status.js";
import { streamDetailBody, type StreamDetailBody } from "../../shared/status-health.js";
import { waitFor } from "../helpers/cluster.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { TOKEN, call, startAgent, waitSettled, type RunningAgent } from "../http/fixture.js";

async function ctl(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await run(args, env, { stdout: (t) => (out += t), stderr: (t) => (err += t), timeoutMs: 10_000 });
  return { code, out, err };
}

const detail = (over: Partial<StreamDetailBody>): StreamDetailBody =>
  streamDetailBody.parse({
    id: 7,
    url: "http://radio.example.invalid/s7",
    name: "Stream 7",
    owner: "w-nl",
    state: "assigned",
    health: "ok",
    last_ok_at: "2026-01-01T10:00:00.000Z",
    last_error: null,
    last_error_at: null,
    failing_since: null,
    failures: [],
    recent_moves: [],
    quarantine: null,
    constraint: null,
    unassigned_reason: null,
    ...over,
  });

describe("fingerctl stream-health views (formatting)", () => {
  it("streams --failing: counts, then failing and quarantined streams with their last error", () => {
    const body = {
      health: { ok: 30, failing: 1, quarantined: 1, unknown: 4 },
      failing_streams: [{ id: 7, name: "Stream 7", owner: "w-nl", error: "403\nForbidden by geo rule", since: "2026-01-01T10:00:00.000Z" }],
      quarantined_streams: [{ id: 9, name: "Stream 9", error: "timeout", since: "2026-01-01T09:00:00.000Z", retry_at: "2026-01-01T09:15:00.000Z" }],
      streams: { active: 36 },
    } as unknown as StreamsStatusBody;
    const out = formatFailing(body);
    expect(out).toMatch(/^Stream health: 30 ok, 1 failing, 1 quarantined, 4 unknown \(36 active\)/);
    expect(out).toMatch(/^STREAM\s+NAME\s+OWNER\s+FAILING SINCE\s+LAST ERROR$/m);
    expect(out).toMatch(/^7\s+Stream 7\s+w-nl\s+2026-01-01 10:00:00Z\s+403 Forbidden by geo rule$/m);
    expect(out).toMatch(/^9\s+Stream 9\s+2026-01-01 09:00:00Z\s+2026-01-01 09:15:00Z\s+timeout$/m);
    expect(out).toContain("fingerctl retry ID");
    const none = formatFailing({ ...body, health: { ok: 36, failing: 0, quarantined: 0, unknown: 0 }, failing_streams: [], quarantined_streams: [] });
    expect(none).toMatch(/Failing \(0\):\n  none\n\nQuarantined \(0\):\n  none\n$/);
  });

  it("stream ID: owner, health, last error, placement, failures and moves, readable", () => {
    const failing = formatStream(
      detail({
        health: "failing",
        failing_since: "2026-01-01T10:00:00.000Z",
        last_error: "403",
        last_error_at: "2026-01-01T10:02:00.000Z",
        constraint: { exit: "br" },
        failures: [{ instance_id: "w-nl", error: "403", at: "2026-01-01T10:02:00.000Z" }],
        recent_moves: [{ at: "2026-01-01T09:00:00.000Z", from: null, to: "w-nl", reason: "join" }],
      }),
    );
    expect(failing).toMatch(/^Stream 7 "Stream 7" http:\/\/radio\.example\.invalid\/s7\n/);
    expect(failing).toMatch(/^ {2}owner {6}w-nl \(assigned\)$/m);
    expect(failing).toMatch(/^ {2}health {5}failing since 2026-01-01 10:00:00Z$/m);
    expect(failing).toMatch(/^ {2}last error 403 at 2026-01-01 10:02:00Z$/m);
    expect(failing).toMatch(/^ {2}placement +only on workers labelled exit=br$/m);
    expect(failing).toMatch(/^2026-01-01 10:02:00Z\s+w-nl\s+403$/m);
    expect(failing).toMatch(/^2026-01-01 09:00:00Z\s+-\s+w-nl\s+join$/m);
    const q = formatStream(
      detail({
        owner: null,
        state: "unassigned",
        health: "quarantined",
        unassigned_reason: "quarantined",
        quarantine: { since: "2026-01-01T11:00:00.000Z", retry_at: "2026-01-01T11:30:00.000Z", retries: 1 },
      }),
    );
    expect(q).toMatch(/owner {6}nobody \(unassigned: quarantined\)/);
    expect(q).toMatch(/health {5}quarantined since 2026-01-01 11:00:00Z, next retry 2026-01-01 11:30:00Z \(1 retry so far\)/);
    expect(q).toContain("`fingerctl retry 7` releases it now");
    expect(formatStream(detail({ url: "http://user:secret@radio.example.invalid/x" }))).not.toContain("secret");
  });

  it("instances: a degraded worker is marked with why (and until when); labels shown", () => {
    const base = { worker: { ok: true, last_seen_ms_ago: 100, kind: "v1" }, degraded: false, degraded_reason: null, degraded_until: null, labels: {} } as unknown as Parameters<typeof workerCell>[0];
    const ago = () => "1s";
    expect(workerCell(base, ago)).toBe("ok");
    expect(workerCell({ ...base, degraded: true, degraded_reason: "failures", degraded_until: null }, ago)).toBe("ok, DEGRADED (failures)");
    expect(workerCell({ ...base, degraded: true, degraded_reason: "rate-limited", degraded_until: "2026-01-01T10:00:00.000Z" }, ago)).toBe("ok, DEGRADED (rate-limited until 2026-01-01 10:00:00Z)");
    expect(labelsCell({ ...base, labels: { exit: "br", region: "sudeste" } })).toBe("exit=br,region=sudeste");
    expect(labelsCell(base)).toBe("-");
  });

  it("keeps a worker's free-text error on one bounded line", () => {
    expect(oneLine(null)).toBe("-");
    expect(oneLine("  a\n\tb ")).toBe("a b");
    expect(oneLine("x".repeat(200), 10)).toBe(`${"x".repeat(9)}…`);
  });

  it("bad usage: exit code 2", async () => {
    for (const args of [["stream"], ["stream", "1", "2"], ["retry"], ["status", "--failing"], ["streams", "--failing", "7"]]) {
      const r = await ctl(args, { FINGERCTL_URL: "http://127.0.0.1:9" });
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err, args.join(" ")).toMatch(/^fingerctl: /);
    }
    expect((await ctl(["--help"])).out).toMatch(/streams --failing[\s\S]*stream ID[\s\S]*retry ID/);
  });
});

describe("fingerctl stream-health commands against real agents", () => {
  const STREAMS = 12;
  let db: TestDatabase;
  const agents: RunningAgent[] = [];
  let url: string;

  beforeAll(async () => {
    db = await createTestDatabase("ctlhealth");
    await createCatalog(db.sql, STREAMS);
    const prefix = uniqueName("ctlhealth");
    // A long STREAM_FAILOVER_AFTER: the failing stream stays where it is while we look at it.
    for (const id of ["h1", "h2"]) agents.push(await startAgent({ id, databaseUrl: db.url, prefix, capacity: 10, listen: true, env: { ADMIN_TOKEN: TOKEN, STREAM_FAILOVER_AFTER: "600" } }));
    url = agents[0]!.url;
    await waitSettled(agents[0]!.app, STREAMS, "the cluster to settle", 2);
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) await a.close();
    await db?.drop();
  });

  it("a stream its worker reports failing shows in streams --failing and stream ID; retry is an admin call", async () => {
    const dist = streamsStatusBody.parse((await call(agents[0]!.app, "GET", "/streams/status")).body).distribution;
    const owner = dist.find((d) => d.count > 0)!;
    const victim = owner.streams[0]!;
    const worker = agents.find((a) => a.id === owner.instance_id)!;
    // The worker takes its assignment (outcomes count only for streams it holds), then reports.
    const report = async (status: string, error?: string) => {
      expect((await call(worker.app, "GET", "/v1/assignment")).status).toBe(200);
      return call(worker.app, "POST", "/v1/report", { body: { streams: owner.streams.map((s) => (s === victim ? { id: s, status, ...(error ? { error } : {}) } : { id: s, status: "ok" })) } });
    };
    expect((await report("failed", "403 geo-blocked")).status).toBe(200);
    await waitFor(async () => (await ctl(["--url", url, "streams", "--failing", "--json"])).out.includes("403 geo-blocked"), 20_000, "the failure to show", 200);

    const failing = await ctl(["--url", url, "streams", "--failing"]);
    expect(failing.err).toBe("");
    expect(failing.code).toBe(0);
    expect(failing.out).toMatch(/^Stream health: \d+ ok, 1 failing, 0 quarantined, \d+ unknown/);
    expect(failing.out).toMatch(new RegExp(`^${victim}\\s+Stream ${victim}\\s+${owner.instance_id}\\s+\\S+ \\S+\\s+403 geo-blocked$`, "m"));

    expect((await ctl(["--url", url, "streams"])).out).toMatch(/^Health: {2}\d+ ok, 1 failing, 0 quarantined, \d+ unknown \(details: fingerctl streams --failing\)$/m);
    const one = await ctl(["--url", agents[1]!.url, "stream", String(victim)]);
    expect(one.code).toBe(0);
    expect(one.out).toMatch(new RegExp(`^Stream ${victim} "Stream ${victim}" http://radio\\.example\\.invalid/s${victim}$`, "m"));
    expect(one.out).toMatch(new RegExp(`owner {6}${owner.instance_id} \\(assigned\\)`));
    expect(one.out).toMatch(/health {5}failing since \d{4}-/);
    expect(one.out).toMatch(/last error 403 geo-blocked at \d{4}-/);
    expect(one.out).toMatch(/^Failures \(newest first\):$/m);
    expect(one.out).toMatch(new RegExp(`^\\S+ \\S+\\s+-\\s+${owner.instance_id}\\s+\\S+$`, "m")); // its first assignment, in recent moves
    expect(streamDetailBody.parse(JSON.parse((await ctl(["--url", url, "stream", String(victim), "--json"])).out)).health).toBe("failing");

    const noToken = await ctl(["--url", url, "retry", String(victim)]);
    expect(noToken.code).toBe(1);
    expect(noToken.err).toMatch(/refused POST \/streams\/\d+\/retry \(HTTP 401\).*ADMIN_TOKEN is not set/);
    const retried = await ctl(["--url", url, "retry", String(victim)], { ADMIN_TOKEN: TOKEN });
    expect(retried.err).toBe("");
    expect(retried.code).toBe(0);
    expect(retried.out).toMatch(new RegExp(`^Stream ${victim}: quarantine and failure memory cleared; health is now (ok|unknown|failing)`));
    const after = streamDetailBody.parse(JSON.parse((await ctl(["--url", url, "stream", String(victim), "--json"])).out));
    expect(after.failures).toEqual([]);
  });

  it("an unknown stream: a clear refusal and exit code 1", async () => {
    const r = await ctl(["--url", url, "stream", "no-such-stream"]);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/^fingerctl: the agent at \S+ refused GET \/streams\/no-such-stream \(HTTP 404\): \S/);
    const retry = await ctl(["--url", url, "retry", "99999"], { ADMIN_TOKEN: TOKEN });
    expect(retry.code).toBe(1);
    expect(retry.err).toMatch(/HTTP 404/);
  });
});
