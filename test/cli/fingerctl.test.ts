/**
 * fingerctl against a running cluster: three in-process agents listening on real ports.
 * Most commands go through run() (same code, no process start); the launcher itself
 * (bin/fingerctl.js → tsx → agent/cli.ts) is exercised as a real process too.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../agent/cli.js";
import { instancesBody, planBody, statusBody, streamsStatusBody } from "../../shared/status.js";
import { freePort, waitFor } from "../helpers/cluster.js";
import { createCatalog, createTestDatabase, uniqueName, type TestDatabase } from "../helpers/services.js";
import { TOKEN, startAgent, waitCounts, waitSettled, type RunningAgent } from "../http/fixture.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const STREAMS = 36;

interface Result {
  code: number;
  out: string;
  err: string;
}

async function ctl(args: string[], env: Record<string, string | undefined> = {}): Promise<Result> {
  let out = "";
  let err = "";
  const code = await run(args, env, { stdout: (t) => (out += t), stderr: (t) => (err += t), timeoutMs: 10_000 });
  return { code, out, err };
}

/** The real launcher, as `npx fingerctl` runs it. */
function launcher(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, "bin/fingerctl.js"), ...args],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, out: stdout, err: stderr }),
    );
  });
}

describe("fingerctl", () => {
  let db: TestDatabase;
  const agents: RunningAgent[] = [];
  let url: string;
  let deadUrl: string;

  beforeAll(async () => {
    db = await createTestDatabase("fingerctl");
    await createCatalog(db.sql, STREAMS);
    const prefix = uniqueName("fingerctl");
    for (const id of ["c1", "c2", "c3"]) {
      agents.push(await startAgent({ id, databaseUrl: db.url, prefix, capacity: 20, listen: true, env: { ADMIN_TOKEN: TOKEN } }));
    }
    url = agents[1]!.url;
    deadUrl = `http://127.0.0.1:${await freePort()}`;
    await waitSettled(agents[0]!.app, STREAMS, "the cluster to settle", 3);
    await waitCounts(agents[0]!.app, { c1: 12, c2: 12, c3: 12 }, "an even split");
  });

  afterAll(async () => {
    for (const a of agents) await a.close();
    await db?.drop();
  });

  it("status: a readable summary, or the agent's JSON with --json", async () => {
    const t = await ctl(["--url", url, "status"]);
    expect(t.err).toBe("");
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/^Cluster, as seen by c2/);
    expect(t.out).toMatch(/leader\s+c[123] \(epoch \d+\)/);
    expect(t.out).toMatch(/mode\s+orchestrated/);
    expect(t.out).toMatch(/instances\s+3 total: 3 active/);
    expect(t.out).toContain(`streams     ${STREAMS} active: ${STREAMS} assigned, 0 unassigned`);
    const j = await ctl(["status", "--json", "--url", url]);
    expect(j.code).toBe(0);
    expect(statusBody.parse(JSON.parse(j.out)).streams.assigned).toBe(STREAMS);
  });

  it("instances: one row per instance with load against capacity, and a summary", async () => {
    const t = await ctl(["--url", url, "instances"]);
    expect(t.code).toBe(0);
    const lines = t.out.split("\n");
    expect(lines[0]).toMatch(/^ID\s+LEADER\s+STATUS\s+STREAMS\s+CAPACITY\s+LOAD\s+WORKER/);
    for (const id of ["c1", "c2", "c3"]) expect(t.out).toMatch(new RegExp(`^${id}\\s+\\*?\\s*active\\s+12\\s+20\\s+60\\.0%`, "m"));
    expect(t.out).toMatch(/3 of 3 instance\(s\) live; capacity 60, assigned 36, average load 60\.0%/);
    const j = await ctl(["--url", url, "--json", "instances"]);
    expect(instancesBody.parse(JSON.parse(j.out)).instances).toHaveLength(3);
  });

  it("streams: totals, distribution and recent changes", async () => {
    const t = await ctl(["--url", url, "streams"]);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/^Streams: 36 active, 36 assigned, 0 unassigned/);
    expect(t.out).toMatch(/^INSTANCE\s+STATUS\s+COUNT\s+CAPACITY\s+STREAMS/m);
    expect(t.out).toContain("Unassigned: none");
    expect(t.out).toMatch(/^TIME\s+KIND\s+STREAM\s+FROM\s+TO\s+REASON/m);
    const j = await ctl(["--url", url, "streams", "--json"]);
    expect(streamsStatusBody.parse(JSON.parse(j.out)).distribution).toHaveLength(3);
  });

  it("finds the agent from --url, then FINGERCTL_URL, then ORCHESTRATOR_URL", async () => {
    expect((await ctl(["status"], { FINGERCTL_URL: url, ORCHESTRATOR_URL: deadUrl })).code).toBe(0);
    expect((await ctl(["status"], { ORCHESTRATOR_URL: url })).code).toBe(0);
    expect((await ctl(["status", "--url", url], { FINGERCTL_URL: deadUrl, ORCHESTRATOR_URL: deadUrl })).code).toBe(0);
    const r = await ctl(["status"], { FINGERCTL_URL: deadUrl, ORCHESTRATOR_URL: url });
    expect(r.code).toBe(3);
  });

  it("an unreachable agent: a clear error and exit code 3", async () => {
    const r = await ctl(["--url", deadUrl, "instances"]);
    expect(r.code).toBe(3);
    expect(r.out).toBe("");
    expect(r.err).toMatch(new RegExp(`^fingerctl: cannot reach the agent at ${deadUrl}: ECONNREFUSED`));
  });

  it("refusals: no token, a wrong token, an unknown instance: a clear error and exit code 1", async () => {
    const none = await ctl(["--url", url, "drain", "c3"]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/refused POST \/instances\/c3\/drain \(HTTP 401\).*ADMIN_TOKEN is not set/);
    const wrong = await ctl(["--url", url, "mode", "hashed"], { ADMIN_TOKEN: "change-me-wrong-token" });
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/HTTP 401\): Invalid admin token/);
    expect(wrong.err).not.toContain("change-me-wrong-token");
    const unknown = await ctl(["--url", url, "drain", "nobody"], { ADMIN_TOKEN: TOKEN });
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/HTTP 404\): Unknown instance nobody/);
    const s = statusBody.parse(JSON.parse((await ctl(["--url", url, "status", "--json"])).out));
    expect(s.mode).toBe("orchestrated");
    expect(s.instances.draining).toBe(0);
  });

  it("bad usage: exit code 2 with a message", async () => {
    const cases: string[][] = [[], ["frobnicate"], ["drain"], ["drain", "a", "b"], ["mode", "sideways"], ["status", "--bogus"], ["--url"], ["--url", "ftp://x", "status"], ["--url", "not a url", "status"], ["status", "--dry-run"]];
    for (const args of cases) {
      const r = await ctl(args, { FINGERCTL_URL: url });
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err, args.join(" ")).toMatch(/^(fingerctl: |Usage: fingerctl)/);
    }
    const help = await ctl(["--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toContain("rebalance [--dry-run]");
  });

  it("drain ID / undrain ID change the cluster", async () => {
    const env = { ADMIN_TOKEN: TOKEN, FINGERCTL_URL: url };
    const d = await ctl(["drain", "c3"], env);
    expect(d.err).toBe("");
    expect(d.code).toBe(0);
    expect(d.out).toMatch(/c3 is draining/);
    await waitFor(async () => {
      const b = instancesBody.parse(JSON.parse((await ctl(["instances", "--json"], env)).out));
      const c3 = b.instances.find((i) => i.instance_id === "c3")!;
      return c3.status === "draining" && c3.current_streams === 0;
    }, 30_000, "c3 to be drained");
    const table = await ctl(["instances"], env);
    expect(table.out).toMatch(/^c3\s+\*?\s*draining\s+0\s+20/m);
    const u = await ctl(["undrain", "c3"], env);
    expect(u.code).toBe(0);
    expect(u.out).toMatch(/c3 is no longer draining/);
    await waitCounts(agents[0]!.app, { c1: 12, c2: 12, c3: 12 }, "c3 to serve its share again");
  });

  it("mode hashed / mode orchestrated flip the cluster flag", async () => {
    const env = { ADMIN_TOKEN: TOKEN, FINGERCTL_URL: url };
    const h = await ctl(["mode", "hashed"], env);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/Cluster mode set to hashed/);
    expect((await ctl(["status"], env)).out).toMatch(/mode\s+hashed \(flag version \d+, set by fingerctl/);
    const o = await ctl(["mode", "orchestrated", "--json"], env);
    expect(o.code).toBe(0);
    expect(JSON.parse(o.out)).toMatchObject({ mode: "orchestrated", changed: true });
    await waitSettled(agents[0]!.app, STREAMS, "the cluster to be orchestrated again");
    await waitCounts(agents[0]!.app, { c1: 12, c2: 12, c3: 12 }, "an even split again");
  });

  it("rebalance --dry-run prints the plan; rebalance asks the leader", async () => {
    const env = { ADMIN_TOKEN: TOKEN, FINGERCTL_URL: url };
    const dry = await ctl(["rebalance", "--dry-run"], env);
    expect(dry.err).toBe("");
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/Targets: c1=12 c2=12 c3=12/);
    expect(dry.out).toMatch(/Dry run \(epoch \d+\): \d+ move\(s\).*nothing was changed/);
    const dj = await ctl(["rebalance", "--dry-run", "--json"], env);
    expect(planBody.parse(JSON.parse(dj.out)).dry_run).toBe(true);
    const r = await ctl(["rebalance"], env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Rebalance requested; leader c[123]/);
  });

  it("the bin launcher runs from the checkout (tsx), with exit codes intact", async () => {
    const ok = await launcher(["status"], { FINGERCTL_URL: url });
    expect(ok.err).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^Cluster, as seen by c2/);
    const refused = await launcher(["--url", url, "drain", "nobody"], { ADMIN_TOKEN: TOKEN });
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/Unknown instance nobody/);
    const down = await launcher(["instances"], { ORCHESTRATOR_URL: deadUrl });
    expect(down.code).toBe(3);
    expect(down.err).toMatch(/cannot reach the agent/);
  });
});
